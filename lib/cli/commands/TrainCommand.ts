/**
 * TrainCommand.ts — `motif-native train --model DIR --dataset FILE [...]`: MOTIF or GRPO fine-tuning
 * with LoRA (lib/train/trainer.ts), a progress bar, and a run folder (manifest, metrics, samples,
 * checkpoints, the final PEFT adapter).
 *
 * Every setting is a flag (the table in lib/train/flags.ts, with the paper's defaults). Settings
 * merge in this order: command line > `--config file.json` > the run's own manifest (with --resume)
 * > defaults. With no --model the command runs the built-in demo (lib/demo/run-demo.ts): the shipped
 * tiny model on the generated multi-round task, accuracy before and after, summary.json.
 */
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { type DatasetKind, type DatasetOptions, loadDataset } from '../../data/datasets.js';
import { runDemo } from '../../demo/run-demo.js';
import { type LoadModelOptions, loadModel } from '../../model/Model.js';
import { MotifError } from '../../native/errors.js';
import { closeSymbolic } from '../../text/symbolic.js';
import { type Flag, G_RUN, resolveTrainValues, TRAIN_FLAGS } from '../../train/flags.js';
import { ProgressBar } from '../../train/progress.js';
import { train } from '../../train/trainer.js';
import { isTrainableModel } from '../../train/types.js';
import { interruptOnSigint } from '../interrupt.js';

/** Adds the flags of a table to a yargs builder (defaults are shown, not set: unset flags stay undefined). */
export function addFlags<T>(y: Argv<T>, flags: readonly Flag[]): Argv<T> {
  let out = y;
  for (const f of flags)
    out = out.option(f.name, {
      type: f.type,
      describe: f.describe,
      group: f.group,
      ...(f.choices ? { choices: f.choices as string[] } : {}),
      ...(f.default !== undefined ? { defaultDescription: JSON.stringify(f.default) } : {}),
    });
  return out;
}

function usage(message: string): MotifError {
  return new MotifError('ERR_MOTIF_INVALID_ARGUMENT', message);
}

/** What `train` needs from outside (replaceable in tests). */
export interface TrainDeps {
  loadModel: (dir: string, options: LoadModelOptions) => Promise<unknown>;
}

/** The `train` command's work: resolve the settings, load data and model, train, print a summary. */
export async function runTrain(argv: Record<string, unknown>, deps: TrainDeps = { loadModel }): Promise<void> {
  const { values, config } = await resolveTrainValues(argv);
  // No model from the command line, a --config file or the resumed run: the built-in demo
  // (lib/demo/run-demo.ts) with its own model, task and settings.
  if (values.model === undefined) {
    try {
      await runDemo(argv, { loadModel: deps.loadModel });
    } finally {
      await closeSymbolic();
    }
    return;
  }
  const modelDir = values.model as string;
  const datasetFile = values.dataset as string | undefined;
  if (datasetFile === undefined)
    throw usage(
      '--dataset FILE is required: a JSONL or Parquet file of questions and answers (e.g. GSM8K train.jsonl)',
    );
  const datasetOptions: DatasetOptions = {
    kind: values['dataset-kind'] as DatasetKind | undefined,
    questionField: values['question-field'] as string | undefined,
    answerField: values['answer-field'] as string | undefined,
    idField: values['id-field'] as string | undefined,
    limit: values.limit as number | undefined,
  };
  const data = await loadDataset(datasetFile, datasetOptions);
  const model = await deps.loadModel(modelDir, {
    device: values.device as LoadModelOptions['device'],
    threads: values.threads as number,
    kvCacheBytes: values['kv-cache-bytes'] as number | undefined,
  });
  const dispose = async () => (model as { dispose?: () => Promise<void> }).dispose?.();
  if (!isTrainableModel(model)) {
    await dispose();
    throw new MotifError(
      'ERR_MOTIF_UNSUPPORTED',
      'this build of the engine has no training API yet (LoRA adapters, lossAndGradients, AdamW); ' +
        'the trainer (lib/train) is ready and runs as soon as the engine provides them. ' +
        '`motif-native eval` and `motif-native generate` work today.',
    );
  }
  const info = (model as { info?: Record<string, unknown> }).info;
  const quiet = values.quiet === true;
  const progress = quiet ? undefined : new ProgressBar({ total: config.steps });
  const interrupt = interruptOnSigint(
    (m) => (progress ? progress.log(m) : console.error(m)),
    'finishing the current step and writing a checkpoint',
  );
  try {
    const r = await train(model, {
      ...config,
      dataset: data.data,
      runDir: values['run-dir'] as string,
      resume: values.resume === true,
      baseModel: modelDir,
      environment: { dir: path.resolve(modelDir), device: values.device, threads: values.threads, ...info },
      argv: process.argv.slice(2),
      manifestExtra: { cli: { ...values, resume: undefined, quiet: undefined } },
      progress,
      log: quiet ? () => {} : undefined,
      signal: interrupt.signal,
    });
    const skipped = r.skippedSteps ? ` (${r.skippedSteps} skipped for NaN/Inf)` : '';
    console.log(
      `${r.aborted ? 'stopped' : 'done'}: ${r.stepsCompleted}/${config.steps} steps${skipped}; run folder ${r.runDir}`,
    );
    if (r.adapterDir) console.log(`adapter (PEFT): ${r.adapterDir}`);
    if (r.evaluation)
      console.log(
        `held-out pass@1 (${r.evaluation.problems} questions): strict ${(100 * r.evaluation.strict.accuracy).toFixed(1)}%, match ${(100 * r.evaluation.match.accuracy).toFixed(1)}%`,
      );
    if (r.aborted) process.exitCode = 130;
  } finally {
    interrupt.release();
    await dispose();
    await closeSymbolic();
  }
}

/** The `train` command (register it in cli.ts). */
export const trainCommand: CommandModule<object, Record<string, unknown>> = {
  command: 'train',
  describe: 'Fine-tune a model with MOTIF (multi-round GRPO) or GRPO, with LoRA',
  builder: (y) =>
    addFlags(y, TRAIN_FLAGS)
      .option('config', {
        type: 'string',
        group: G_RUN,
        describe:
          'JSON file of settings (keys: these flag names); flags on the command line win. YAML is not supported (no YAML parser is installed)',
      })
      .example(
        '$0 train --model ./Qwen2.5-0.5B-Instruct --dataset ../shared/data/gsm8k/train.jsonl --steps 100',
        'MOTIF with the paper defaults',
      )
      .example(
        '$0 train --method grpo --model DIR --dataset FILE --num-generations 4',
        'the single-round GRPO baseline',
      )
      .example('$0 train --resume --run-dir runs/motif-20250101-120000', 'continue a run from its latest checkpoint')
      .epilog(
        'Writes <run-dir>/manifest.json, metrics.jsonl (one line per step), samples.jsonl, checkpoints/step-N/ ' +
          '(adapter + optimizer + trainer state) and adapter/ (the final PEFT adapter, loadable by HF PEFT and vLLM).',
      ) as Argv<Record<string, unknown>>,
  handler: async (argv) => runTrain(argv as Record<string, unknown>),
};
