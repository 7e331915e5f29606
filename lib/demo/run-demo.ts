/**
 * run-demo.ts — `motif-native train` with no --model: the built-in demo. Loads the shipped tiny model
 * (assets/demo-model/), generates the demo task's training and held-out problems, measures
 * multi-round greedy accuracy on the held-out problems BEFORE training, trains with MOTIF (or the
 * single-round GRPO baseline with --method grpo) through the ordinary trainer, measures AFTER, prints
 * both and writes summary.json (plus eval-before.jsonl / eval-after.jsonl) into the run folder next to
 * the trainer's usual files. Flags still apply: the demo's settings (lib/demo/settings.ts) only fill
 * in what the command line does not set.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { LoadModelOptions } from '../model/Model.js';
import { MotifError } from '../native/errors.js';
import { writeRunReport } from '../report/writeReport.js';
import { type EvaluateResult, evaluate } from '../train/evaluate.js';
import { readConfigFile, resolveTrainValues, TRAIN_FLAGS } from '../train/flags.js';
import { ProgressBar } from '../train/progress.js';
import { RunDir, writeFileAtomic } from '../train/run-dir.js';
import { train } from '../train/trainer.js';
import { isTrainableModel, type TrainableModel } from '../train/types.js';
import { DEMO_SETTINGS } from './settings.js';
import { demoTemplates, generateDemoRows } from './task.js';

/** The shipped model folder: assets/demo-model at the package root (found from lib/ or dist/lib/). */
export function demoModelDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'assets', 'demo-model');
    if (existsSync(path.join(candidate, 'config.json'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new MotifError(
    'ERR_MOTIF_IO',
    'the built-in demo model (assets/demo-model/config.json) is missing from this installation; ' +
      'regenerate it with `node --import tsx scripts/make-demo-model.ts` or pass --model',
  );
}

/** The demo's settings as train flags (name → value), for the flags the user left unset. */
export function demoFlagDefaults(): Record<string, unknown> {
  const t = DEMO_SETTINGS.train as Record<string, unknown>;
  const out: Record<string, unknown> = { 'max-tokens': DEMO_SETTINGS.maxTokens };
  for (const f of TRAIN_FLAGS) {
    if (!f.key) continue;
    let v: unknown;
    if (f.key.startsWith('lora.')) v = (DEMO_SETTINGS.train.lora as Record<string, unknown>)[f.key.slice(5)];
    else v = t[f.key];
    if (Array.isArray(v)) v = v.join(',');
    if (v !== undefined) out[f.name] = v;
  }
  return out;
}

/** What the demo writes to summary.json. */
export interface DemoSummary {
  format: 'motif-native-demo-summary';
  version: 1;
  method: string;
  /** Held-out greedy accuracy (strict: `\boxed{answer}`), as fractions. */
  accuracyBefore: number;
  accuracyAfter: number;
  /** How the held-out problems were evaluated: R rounds of the MOTIF protocol, or the single-round prompt. */
  evalProtocol: { prompt: 'motif' | 'grpo'; rounds: number; problems: number; maxTokens: number };
  steps: number;
  stepsCompleted: number;
  wallSeconds: number;
  trainSeconds: number;
  evalSeconds: { before: number; after: number };
  task: typeof DEMO_SETTINGS.task;
  model: string;
  adapter: string | null;
  aborted: boolean;
}

/** What the demo needs from outside (replaceable in tests). */
export interface DemoDeps {
  loadModel: (dir: string, options: LoadModelOptions) => Promise<unknown>;
  /** The model folder (default: the shipped {@link demoModelDir}). */
  modelDir?: string;
  /** Fewer generated problems (a shortened demo, for tests). Default: DEMO_SETTINGS's. */
  evalProblems?: number;
  trainProblems?: number;
  /** Where the printed lines go (default console.log). */
  print?: (line: string) => void;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** Runs the built-in demo; `argv` is the train command's parsed flags (no --model). */
export async function runDemo(argv: Record<string, unknown>, deps: DemoDeps): Promise<DemoSummary> {
  const t0 = performance.now();
  const print = deps.print ?? ((line: string) => console.log(line));
  // Demo settings fill in only what neither the command line nor a --config file sets.
  const fromFile = typeof argv.config === 'string' ? await readConfigFile(argv.config) : {};
  if (argv.dataset !== undefined || fromFile.dataset !== undefined)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      '--dataset needs --model: the built-in demo (no --model) trains on its own generated task',
    );
  if (argv.resume === true)
    throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', '--resume is not supported by the built-in demo; pass --model');
  const merged: Record<string, unknown> = { ...argv };
  for (const [name, v] of Object.entries(demoFlagDefaults()))
    if (merged[name] === undefined && fromFile[name] === undefined) merged[name] = v;
  if (merged['run-dir'] === undefined && fromFile['run-dir'] === undefined) {
    const d = new Date();
    const p = (n: number) => String(n).padStart(2, '0');
    const stamp = `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
    merged['run-dir'] = path.join('runs', `demo-${String(merged.method ?? fromFile.method ?? 'motif')}-${stamp}`);
  }
  const { values, config } = await resolveTrainValues(merged);
  const runDir = values['run-dir'] as string;
  const quiet = values.quiet === true;
  const say = quiet ? () => {} : print;

  const modelDir = deps.modelDir ?? demoModelDir();
  const loadOptions: LoadModelOptions = {
    device: values.device as LoadModelOptions['device'],
    threads: values.threads as number,
    kvCacheBytes: values['kv-cache-bytes'] as number | undefined,
  };
  const model = await deps.loadModel(modelDir, loadOptions);
  const dispose = async () => (model as { dispose?: () => Promise<void> }).dispose?.();
  try {
    if (!isTrainableModel(model))
      throw new MotifError('ERR_MOTIF_UNSUPPORTED', 'this build of the engine has no training API; the demo needs it');
    const m: TrainableModel = model;
    const task = DEMO_SETTINGS.task;
    const templates = demoTemplates();
    const trainRows = generateDemoRows(
      deps.trainProblems ?? DEMO_SETTINGS.trainProblems,
      DEMO_SETTINGS.trainSeed,
      task,
    );
    const heldOut = generateDemoRows(deps.evalProblems ?? DEMO_SETTINGS.evalProblems, DEMO_SETTINGS.evalSeed, task);
    const prompt = config.method === 'motif' ? ('motif' as const) : ('grpo' as const);
    const evalProtocol = {
      prompt,
      rounds: config.rounds,
      problems: heldOut.length,
      maxTokens: config.maxTokens,
    };
    const goal =
      config.method === 'motif'
        ? `learns to carry its progress across ${config.rounds} rounds`
        : 'trains the single-round GRPO baseline (one round, the same budget)';
    say(
      `built-in demo: a tiny Qwen2 (${modelDir}) ${goal} ` +
        `(sum of ${task.length} digits mod 10, ${task.stepsPerRound} steps fit in a round's ${config.maxTokens} tokens)`,
    );
    // Each evaluation runs on its own freshly loaded instance: the shipped weights, plus the adapter
    // as saved for AFTER (what a user reloading the run gets).
    const evalAt = async (name: string, adapter?: string): Promise<EvaluateResult> => {
      const fresh = (await deps.loadModel(modelDir, { ...loadOptions, adapter })) as TrainableModel & {
        dispose?: () => Promise<void>;
      };
      try {
        return await evaluate(fresh, {
          dataset: heldOut,
          rounds: config.rounds,
          prompt,
          maxTokens: config.maxTokens,
          templates,
          batchSize: 100,
          out: path.join(runDir, `eval-${name}.jsonl`),
        });
      } finally {
        await fresh.dispose?.();
      }
    };
    // Create the run folder now (and refuse one that already holds a run) before spending time evaluating.
    await RunDir.open(runDir, { resume: false });
    const before = await evalAt('before');
    say(
      `accuracy before training: ${pct(before.strict.accuracy)} (${before.strict.correct}/${before.problems} held-out problems, greedy, ${config.rounds} round${config.rounds > 1 ? 's' : ''})`,
    );
    const progress = quiet ? undefined : new ProgressBar({ total: config.steps });
    const tTrain = performance.now();
    const r = await train(m, {
      ...config,
      dataset: trainRows,
      runDir,
      templates,
      baseModel: modelDir,
      environment: { dir: modelDir, device: values.device, threads: values.threads, demo: true },
      argv: process.argv.slice(2),
      manifestExtra: {
        cli: { ...values, resume: undefined, quiet: undefined },
        demo: { task, heldOutSeed: DEMO_SETTINGS.evalSeed },
      },
      progress,
      log: quiet ? () => {} : undefined,
    });
    const trainSeconds = (performance.now() - tTrain) / 1000;
    const after = await evalAt('after', r.adapterDir);
    const summary: DemoSummary = {
      format: 'motif-native-demo-summary',
      version: 1,
      method: config.method,
      accuracyBefore: before.strict.accuracy,
      accuracyAfter: after.strict.accuracy,
      evalProtocol,
      steps: config.steps,
      stepsCompleted: r.stepsCompleted,
      wallSeconds: (performance.now() - t0) / 1000,
      trainSeconds,
      evalSeconds: { before: before.seconds, after: after.seconds },
      task,
      model: modelDir,
      adapter: r.adapterDir ?? null,
      aborted: r.aborted,
    };
    await writeFileAtomic(path.join(runDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    // The trainer wrote report.html already; again now, so the page shows accuracy before -> after.
    await writeRunReport(runDir).catch((err: Error) => say(`report.html not written: ${err.message}`));
    say(
      `accuracy after ${r.stepsCompleted} ${config.method.toUpperCase()} steps: ${pct(after.strict.accuracy)} ` +
        `(before ${pct(before.strict.accuracy)}, ${after.strict.accuracy >= before.strict.accuracy ? '+' : ''}${(100 * (after.strict.accuracy - before.strict.accuracy)).toFixed(1)} points)`,
    );
    say(
      `wall time ${summary.wallSeconds.toFixed(0)} s; run folder ${runDir} (summary.json, report.html, metrics.jsonl, adapter/)`,
    );
    return summary;
  } finally {
    await dispose();
  }
}
