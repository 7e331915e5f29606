/**
 * MergeCommand.ts — `motif-native merge --model DIR --adapter DIR --out DIR|FILE.gguf`: folds a PEFT
 * LoRA adapter into its base model (lib/export/mergeAdapter.ts) and writes a HuggingFace folder or a
 * GGUF file, with a progress line on stderr and a summary on stdout.
 */
import type { CommandModule } from 'yargs';
import type { ExportDtype } from '../../export/exportGguf.js';
import { mergeAdapter } from '../../export/mergeAdapter.js';
import { invalidParameterError } from '../../native/errors.js';
import { progressLine, shownPath } from '../progress-line.js';

interface MergeArgs {
  model: string;
  adapter: string;
  out: string;
  format?: string;
  dtype?: string;
  overwrite: boolean;
  quiet: boolean;
}

/** The `merge` yargs command (register with `.command(mergeCommand)` in cli.ts). */
export const mergeCommand: CommandModule<object, MergeArgs> = {
  command: 'merge',
  describe: 'Merge a LoRA adapter into its base model: a HuggingFace folder (safetensors) or a GGUF file',
  builder: (y) =>
    y
      .option('model', { type: 'string', demandOption: true, describe: 'Base model: HuggingFace Qwen2/Llama folder' })
      .option('adapter', {
        type: 'string',
        demandOption: true,
        describe: "PEFT LoRA folder (adapter_config.json + adapter_model.safetensors), e.g. a run's adapter/",
      })
      .option('out', {
        type: 'string',
        demandOption: true,
        describe: 'Output: a folder (safetensors) or a .gguf file',
      })
      .option('format', {
        type: 'string',
        choices: ['safetensors', 'gguf'],
        describe: 'Output format (default: gguf when --out ends in .gguf, else safetensors)',
      })
      .option('dtype', {
        type: 'string',
        describe: "Precision of the weights: f32, f16 or bf16 (default: the checkpoint's)",
      })
      .option('overwrite', { type: 'boolean', default: false, describe: 'Replace --out when it exists' })
      .option('quiet', { type: 'boolean', default: false, describe: 'No progress line' })
      .example('$0 merge --model ./Qwen2.5-3B-Instruct --adapter runs/gsm8k/adapter --out ./merged', 'HF folder')
      .example('$0 merge --model ./Qwen2.5-3B-Instruct --adapter runs/gsm8k/adapter --out merged.gguf', 'GGUF file'),
  handler: async (argv) => {
    if (argv.dtype !== undefined && !['f32', 'f16', 'bf16'].includes(argv.dtype))
      throw invalidParameterError('--dtype', 'f32, f16 or bf16', argv.dtype);
    const progress = progressLine('merge', argv.quiet);
    const t0 = performance.now();
    let result: Awaited<ReturnType<typeof mergeAdapter>>;
    try {
      result = await mergeAdapter({
        modelDir: argv.model,
        adapterDir: argv.adapter,
        out: argv.out,
        format: argv.format as 'safetensors' | 'gguf' | undefined,
        dtype: argv.dtype as ExportDtype | undefined,
        overwrite: argv.overwrite,
        onProgress: (p) => progress.update(p.done, p.total, `tensor ${p.done}/${p.total} ${p.tensor}`),
      });
    } finally {
      progress.done();
    }
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      `wrote ${shownPath(result.out)} (${result.format}): ${result.mergedTensors} projections merged, ` +
        `${result.tensorCount} tensors, in ${seconds.toFixed(1)} s`,
    );
  },
};
