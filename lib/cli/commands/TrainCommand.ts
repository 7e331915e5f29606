/**
 * TrainCommand.ts — `motif-native train`. The trainer (MOTIF / GRPO with LoRA) is not built
 * yet; until it is, the command says so plainly and points at what works today.
 */
import type { CommandModule } from 'yargs';
import { MotifError } from '../../native/errors.js';

export const trainCommand: CommandModule = {
  command: 'train',
  describe: 'Fine-tune a model with MOTIF or GRPO (not available yet in this version)',
  builder: (y) => y.strict(false),
  handler: async () => {
    throw new MotifError(
      'ERR_MOTIF_UNSUPPORTED',
      [
        'training is not available yet in this version of motif-native.',
        'What works today: the native engine loads HuggingFace Qwen2/Llama folders and computes logits',
        "  (import { loadModel } from 'motif-native'; (await loadModel(dir)).forward(tokens)),",
        '  `motif-native info` reports the build, and `npm run bench -- forward` measures prefill speed.',
        'The MOTIF/GRPO trainer, rollout engine and tokenizer are the next milestones (issues #3-#5).',
      ].join('\n'),
    );
  },
};
