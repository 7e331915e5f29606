/**
 * SftCommand.ts — `motif-native sft --model DIR --dataset FILE.jsonl --out DIR`: supervised fine-tuning
 * with LoRA, or of every weight with --full (lib/train/sft.ts), on JSONL rows of {prompt, response} or
 * {messages}, with a progress bar, an optional held-out validation loss, and optionally a merged model
 * (lib/export/mergeAdapter.ts).
 *
 * The LoRA and engine flags are `train`'s (the table in lib/train/flags.ts: same names, defaults and
 * help); the rest are SFT's own. Errors name the flag or the dataset's file:line.
 */
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { splitTrainEval } from '../../data/random.js';
import { mergeAdapter } from '../../export/mergeAdapter.js';
import { type LoadModelOptions, loadModel } from '../../model/Model.js';
import { MotifError } from '../../native/errors.js';
import { type Flag, TRAIN_FLAGS } from '../../train/flags.js';
import { ProgressBar } from '../../train/progress.js';
import { readSftDataset, type SftExample, sft } from '../../train/sft.js';
import { isTrainableModel, LORA_TARGETS } from '../../train/types.js';
import { interruptOnSigint } from '../interrupt.js';
import { progressLine } from '../progress-line.js';
import { addFlags } from './TrainCommand.js';

/** `train`'s flags that `sft` shares (LoRA shape, engine). */
const SHARED = ['lora-r', 'lora-alpha', 'lora-targets', 'rslora', 'device', 'threads'];
const SHARED_FLAGS: readonly Flag[] = TRAIN_FLAGS.filter((f) => SHARED.includes(f.name));

const G_SFT = 'Supervised fine-tuning:';

function usage(message: string): MotifError {
  return new MotifError('ERR_MOTIF_INVALID_ARGUMENT', message);
}

/** The flag's value, checked: a number within [min, max] (an integer when `int`). */
function numberFlag(argv: Record<string, unknown>, name: string, min: number, max: number, int: boolean): number {
  const v = argv[name];
  if (typeof v !== 'number' || Number.isNaN(v) || v < min || v > max || (int && !Number.isInteger(v)))
    throw usage(
      `--${name}: expected ${int ? 'an integer' : 'a number'} in [${min}, ${max === Infinity ? '∞' : max}], got ${JSON.stringify(v)}`,
    );
  return v;
}

/** The value of a shared flag, or its default from train's table. */
function shared(argv: Record<string, unknown>, name: string): unknown {
  return argv[name] ?? SHARED_FLAGS.find((f) => f.name === name)?.default;
}

/** The `sft` command's work (exported for tests). */
export async function runSft(argv: Record<string, unknown>): Promise<void> {
  for (const name of ['model', 'dataset', 'out'])
    if (typeof argv[name] !== 'string' || (argv[name] as string).length === 0)
      throw usage(`--${name} is required (see motif-native sft --help)`);
  const modelDir = argv.model as string;
  const out = argv.out as string;
  const targets = String(shared(argv, 'lora-targets'))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const t of targets)
    if (!(LORA_TARGETS as readonly string[]).includes(t))
      throw usage(`--lora-targets: "${t}" is not one of ${LORA_TARGETS.join(', ')}`);
  if (targets.length === 0) throw usage(`--lora-targets: name at least one of ${LORA_TARGETS.join(', ')}`);
  const settings = {
    epochs: numberFlag(argv, 'epochs', 1, 1e6, true),
    lr: numberFlag(argv, 'lr', 0, 10, false),
    batchSize: numberFlag(argv, 'batch-size', 1, 1e6, true),
    gradAccum: numberFlag(argv, 'grad-accum', 1, 1e6, true),
    warmupRatio: numberFlag(argv, 'warmup-ratio', 0, 1, false),
    weightDecay: numberFlag(argv, 'weight-decay', 0, Infinity, false),
    maxGradNorm: numberFlag(argv, 'max-grad-norm', 0, Infinity, false),
    seed: numberFlag(argv, 'seed', 0, 2 ** 32 - 1, true),
    saveEvery: numberFlag(argv, 'save-every', 0, 1e9, true),
    lora: {
      rank: numberFlag({ 'lora-r': shared(argv, 'lora-r') }, 'lora-r', 1, 4096, true),
      alpha: numberFlag({ 'lora-alpha': shared(argv, 'lora-alpha') }, 'lora-alpha', 1e-9, 1e9, false),
      targets,
      rslora: shared(argv, 'rslora') === true,
    },
  };
  const full = argv.full === true;
  if (full && argv.merge === true)
    throw usage(
      '--merge folds a LoRA adapter into the model; with --full the result already is a whole model (<out>/model)',
    );
  const maxLength = argv['max-length'] === undefined ? undefined : numberFlag(argv, 'max-length', 2, 1e7, true);
  const valFraction = numberFlag(argv, 'val-fraction', 0, 0.9, false);

  const all = await readSftDataset(argv.dataset as string);
  let train: SftExample[] = all;
  let validation: SftExample[] | undefined;
  if (valFraction > 0) {
    const split = splitTrainEval(all, { evalFraction: valFraction, seed: settings.seed });
    if (split.eval.length === 0)
      throw usage(`--val-fraction ${valFraction} of ${all.length} examples holds out none; raise it or leave it out`);
    if (split.train.length === 0) throw usage(`--val-fraction ${valFraction} leaves no training examples`);
    train = split.train;
    validation = split.eval;
  }

  const model = await loadModel(modelDir, {
    device: shared(argv, 'device') as LoadModelOptions['device'],
    threads: shared(argv, 'threads') as number,
  });
  const quiet = argv.quiet === true;
  try {
    if (!isTrainableModel(model))
      throw new MotifError('ERR_MOTIF_UNSUPPORTED', 'this build of the engine has no training API (LoRA, AdamW)');
    const stepsPerEpoch = Math.ceil(train.length / (settings.batchSize * settings.gradAccum));
    const progress = quiet ? undefined : new ProgressBar({ total: settings.epochs * stepsPerEpoch, label: 'sft' });
    const interrupt = interruptOnSigint(
      (m) => (progress ? progress.log(m) : console.error(m)),
      `finishing the current step and writing the ${full ? 'model' : 'adapter'}`,
    );
    const r = await sft(model, train, {
      ...settings,
      full,
      resume: argv.resume === true,
      maxLength,
      validation,
      outDir: out,
      baseModel: modelDir,
      argv: process.argv.slice(2),
      manifestExtra: { cli: { ...argv, _: undefined, $0: undefined } },
      progress,
      log: quiet ? () => {} : undefined,
      signal: interrupt.signal,
    }).finally(interrupt.release);
    if (r.aborted) process.exitCode = 130;
    const cut = r.truncated + r.dropped > 0 ? ` (${r.truncated} cut at max length, ${r.dropped} left out)` : '';
    const skipped = r.skippedSteps ? `, ${r.skippedSteps} skipped for NaN/Inf` : '';
    console.log(
      `${r.aborted ? 'stopped' : 'done'}: ${r.steps} steps on ${r.examples} examples${cut}${skipped}; final loss ${r.finalLoss?.toFixed(4)}`,
    );
    if (r.validationLoss !== undefined)
      console.log(
        `validation loss (${validation?.length} examples): ${r.validationLossBefore?.toFixed(4)} before, ${r.validationLoss.toFixed(4)} after`,
      );
    console.log(
      `run folder ${r.outDir}; ${full ? `model (HuggingFace folder): ${r.modelDir}` : `adapter (PEFT): ${r.adapterDir}`}`,
    );
    if (argv.merge === true && r.adapterDir) {
      const line = progressLine('merge', quiet);
      try {
        const merged = await mergeAdapter({
          modelDir,
          adapterDir: r.adapterDir,
          out: path.join(r.outDir, 'merged'),
          format: 'safetensors',
          overwrite: false,
          onProgress: (p) => line.update(p.done, p.total, `tensor ${p.done}/${p.total} ${p.tensor}`),
        });
        console.log(`merged model (HuggingFace folder): ${merged.out}`);
      } finally {
        line.done();
      }
    }
  } finally {
    await model.dispose();
  }
}

/** The `sft` command (register it in cli.ts). */
export const sftCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'sft',
  describe:
    'Supervised fine-tuning (LoRA, or every weight with --full) on JSONL prompt/response pairs or chat conversations',
  builder: (y) =>
    addFlags(
      y
        .option('model', {
          type: 'string',
          group: G_SFT,
          describe: 'HuggingFace Qwen2/Llama folder (config.json, safetensors, tokenizer.json with a chat template)',
        })
        .option('dataset', {
          type: 'string',
          group: G_SFT,
          describe:
            'JSONL, one example a line: {"prompt", "response"} (or "completion"; optional "system") or {"messages": [{role, content}, ...]} ending with the assistant turn to learn',
        })
        .option('out', {
          type: 'string',
          group: G_SFT,
          describe:
            'Output folder (must not hold a run, unless --resume): manifest.json, metrics.jsonl, checkpoints/, adapter/ (or model/ with --full), merged/',
        })
        .option('epochs', { type: 'number', group: G_SFT, default: 1, describe: 'Passes over the training examples' })
        .option('lr', {
          type: 'number',
          group: G_SFT,
          default: 1e-4,
          describe: 'Peak learning rate (linear warmup, then cosine decay to 0)',
        })
        .option('batch-size', { type: 'number', group: G_SFT, default: 4, describe: 'Examples per micro-batch' })
        .option('grad-accum', {
          type: 'number',
          group: G_SFT,
          default: 1,
          describe: 'Micro-batches per optimizer step (gradient accumulation)',
        })
        .option('max-length', {
          type: 'number',
          group: G_SFT,
          describe:
            "Tokens per example, prompt included; longer ones are cut at the end (default 1024, at most the model's max_position_embeddings)",
        })
        .option('warmup-ratio', {
          type: 'number',
          group: G_SFT,
          default: 0.03,
          describe: 'Warmup steps as a fraction of all steps (rounded up)',
        })
        .option('weight-decay', {
          type: 'number',
          group: G_SFT,
          default: 0,
          describe: 'AdamW weight decay (decoupled)',
        })
        .option('max-grad-norm', {
          type: 'number',
          group: G_SFT,
          default: 1,
          describe: 'Global gradient-norm clipping (0: none)',
        })
        .option('val-fraction', {
          type: 'number',
          group: G_SFT,
          default: 0,
          describe: 'Hold out this fraction of the examples and report their loss before training and after each epoch',
        })
        .option('seed', {
          type: 'number',
          group: G_SFT,
          default: 0,
          describe: 'Seed of the LoRA init, the data order and the validation split',
        })
        .option('save-every', {
          type: 'number',
          group: G_SFT,
          default: 0,
          describe: 'Write checkpoints/step-N every N steps (0: only the final adapter or model)',
        })
        .option('full', {
          type: 'boolean',
          group: G_SFT,
          default: false,
          describe:
            "Full-parameter fine-tuning: train every weight instead of a LoRA adapter (16 bytes of memory per parameter: f32 weights, gradients, AdamW moments) and write <out>/model, a HuggingFace folder in the checkpoint's dtype; the --lora-* flags are ignored",
        })
        .option('merge', {
          type: 'boolean',
          group: G_SFT,
          default: false,
          describe: 'Also write <out>/merged: the base model with the adapter folded in (HuggingFace folder)',
        })
        .option('resume', {
          type: 'boolean',
          group: G_SFT,
          default: false,
          describe:
            'Continue the LoRA run in --out from its latest checkpoint (--save-every, or the one Ctrl-C writes), with the same flags and dataset',
        })
        .option('quiet', { type: 'boolean', group: G_SFT, default: false, describe: 'No progress bar or notices' }),
      SHARED_FLAGS,
    )
      .example(
        '$0 sft --model ./Qwen2.5-0.5B-Instruct --dataset pairs.jsonl --out runs/sft --epochs 3 --val-fraction 0.1',
        'LoRA SFT with a validation loss',
      )
      .example(
        '$0 sft --model ./Qwen2.5-0.5B-Instruct --dataset pairs.jsonl --out runs/full --full --lr 1e-5',
        'Full-parameter SFT; the model is written to runs/full/model',
      )
      .epilog(
        'Only the response tokens (and the end-of-turn token after them) are trained on; the prompt is ' +
          "rendered with the model's chat template and its generation prompt.",
      ) as Argv<Record<string, unknown>>,
  handler: async (argv) => runSft(argv as Record<string, unknown>),
};
