/**
 * run-dir.ts — a training run's folder:
 *
 *   manifest.json          full config, seed, package version, backend/device, git commit + dirty state
 *   metrics.jsonl          one object per optimizer step (appended)
 *   samples.jsonl          a few full round-by-round trajectories per step (appended)
 *   checkpoints/step-N/    adapter_config.json + adapter_model.safetensors (a PEFT adapter),
 *                          optimizer.safetensors (AdamW moments), trainer_state.json (step, data
 *                          cursor, RNG state, schedule position)
 *   adapter/               the final adapter (PEFT), written at the end of the run
 *
 * Whole files (manifest, checkpoints, rewritten logs) are written under a temporary name and renamed;
 * a checkpoint folder appears under its final name only once complete, so `latestCheckpoint` never
 * returns a half-written one. Logs are only appended to, except on resume, where the lines of steps
 * after the checkpoint (and a torn last line) are dropped by writing a new file and renaming it.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { simpleGit } from 'simple-git';
import { SafetensorsFile } from '../formats/safetensors.js';
import { type TensorToWrite, writeSafetensors } from '../formats/safetensors-write.js';
import type { ModelConfig } from '../model/Model.js';
import { MotifError } from '../native/errors.js';
import { version } from '../version.js';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  readAdapter,
  readF32,
  replaceDir,
  saveAdapter,
  writeAdapterFiles,
} from './peft.js';
import type { LoraConfig, OptimizerState, TrainableModel } from './types.js';

/** The git state of a working directory. */
export interface GitState {
  commit: string | null;
  dirty: boolean;
  branch: string | null;
}

/** What a checkpoint's trainer_state.json holds besides the adapter and optimizer. */
export interface TrainerState {
  format: 'motif-native-trainer-state';
  version: 1;
  /** Optimizer steps completed (the checkpoint's N). */
  step: number;
  /** Questions consumed from the seeded data order. */
  dataCursor: number;
  /** State of the trainer's sampling-seed RNG. */
  rngState: number;
  /** Schedule position (steps taken, skipped ones included) and the last lr used. */
  schedule: { position: number; lastLr: number };
  /** Hash of the semantic training config, to refuse resuming a different run. */
  configHash: string;
  /** Updates skipped for NaN/Inf so far. */
  skippedSteps: number;
  time: string;
}

/** A complete checkpoint found on disk. */
export interface CheckpointInfo {
  step: number;
  dir: string;
  state: TrainerState;
}

/** The run's manifest file. */
export const MANIFEST = 'manifest.json';
/** One metrics object per step. */
export const METRICS = 'metrics.jsonl';
/** Sample trajectories, appended per step. */
export const SAMPLES = 'samples.jsonl';
/** Folder of the step-N checkpoints. */
export const CHECKPOINTS = 'checkpoints';
/** A checkpoint's AdamW moments (safetensors; step count in __metadata__). */
export const OPTIMIZER_FILE = 'optimizer.safetensors';
/** A checkpoint's trainer state (JSON). */
export const TRAINER_STATE = 'trainer_state.json';

/**
 * Fault injection for the fault tests (test/unit/train-faults.test.ts): called before every file
 * the run folder writes or appends to (including the startup probe). Unset in normal use.
 */
export const runDirTestHooks: { beforeWrite?: (file: string) => void | Promise<void> } = {};

async function beforeWrite(file: string): Promise<void> {
  await runDirTestHooks.beforeWrite?.(file);
}

/** The reason an fs call failed, for messages (the errno code when there is one). */
function reason(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  if (err instanceof MotifError && cause !== undefined) return reason(cause);
  return (err as NodeJS.ErrnoException).code ?? String((err as Error).message ?? err);
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/** Writes `text` to `file` atomically (temporary file + rename). */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const tmp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
  try {
    await beforeWrite(tmp);
    await writeFile(tmp, text);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw new MotifError('ERR_MOTIF_IO', `${file}: cannot write (${(err as NodeJS.ErrnoException).code ?? err})`, {
      cause: err,
    });
  }
}

/** The commit, dirty state and branch of the git repository at `cwd`, or null when it is not one (or git is missing). */
export async function gitState(cwd: string = process.cwd()): Promise<GitState | null> {
  try {
    const git = simpleGit({ baseDir: cwd });
    if (!(await git.checkIsRepo())) return null;
    let commit: string | null = null;
    try {
      commit = (await git.revparse(['HEAD'])).trim() || null;
    } catch {
      commit = null; // a repository with no commits yet
    }
    const status = await git.status();
    return { commit, dirty: !status.isClean(), branch: status.current ?? null };
  } catch {
    return null;
  }
}

/** Parses the lines of a JSONL log, dropping a torn (unparseable) last line. */
function parseLog(text: string, file: string): Record<string, unknown>[] {
  const lines = text.split('\n');
  const out: Record<string, unknown>[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      if (i < lines.length - 1 && lines.slice(i + 1).some((l) => l.trim() !== ''))
        throw new MotifError('ERR_MOTIF_FORMAT', `${file}:${i + 1}: not a JSON line; the log is damaged`);
    }
  });
  return out;
}

/** The newest complete checkpoint of a run folder (checkpoints/step-N with every file and a valid state), or undefined. */
export async function latestCheckpoint(runDir: string): Promise<CheckpointInfo | undefined> {
  const dir = path.join(path.resolve(runDir), CHECKPOINTS);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  const steps = names
    .map((n) => /^step-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
  for (const step of steps) {
    const ck = path.join(dir, `step-${step}`);
    const files = [ADAPTER_CONFIG, ADAPTER_WEIGHTS, OPTIMIZER_FILE, TRAINER_STATE];
    if (!(await Promise.all(files.map((f) => exists(path.join(ck, f))))).every(Boolean)) continue;
    try {
      const state = JSON.parse(await readFile(path.join(ck, TRAINER_STATE), 'utf8')) as TrainerState;
      if (state.format !== 'motif-native-trainer-state' || state.step !== step) continue;
      return { step, dir: ck, state };
    } catch {}
  }
  return undefined;
}

/** Everything a checkpoint holds, as read back. */
export interface LoadedCheckpoint {
  state: TrainerState;
  lora: LoraConfig;
  adapter: Map<string, Float32Array>;
  optimizer: OptimizerState;
}

/** A run folder: manifest, logs and checkpoints. */
export class RunDir {
  /** Absolute path of the folder. */
  readonly dir: string;

  /** @internal Use RunDir.open(). */
  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Path of manifest.json. */
  get manifestPath(): string {
    return path.join(this.dir, MANIFEST);
  }
  /** Path of metrics.jsonl. */
  get metricsPath(): string {
    return path.join(this.dir, METRICS);
  }
  /** Path of samples.jsonl. */
  get samplesPath(): string {
    return path.join(this.dir, SAMPLES);
  }
  /** Path of checkpoints/. */
  get checkpointsDir(): string {
    return path.join(this.dir, CHECKPOINTS);
  }

  /**
   * Opens (creating it when needed) a run folder. A fresh run (`resume` false) refuses a folder
   * that already holds a run (a manifest or checkpoints), so nothing of an earlier run is overwritten.
   */
  static async open(dir: string, options: { resume: boolean }): Promise<RunDir> {
    const abs = path.resolve(dir);
    try {
      await mkdir(path.join(abs, CHECKPOINTS), { recursive: true });
    } catch (err) {
      throw new MotifError(
        'ERR_MOTIF_IO',
        `${abs}: cannot create the run folder (${(err as NodeJS.ErrnoException).code})`,
        {
          cause: err,
        },
      );
    }
    const run = new RunDir(abs);
    if (!options.resume) {
      const logged = await stat(run.metricsPath).then(
        (st) => st.size > 0,
        () => false,
      );
      const hasRun =
        logged ||
        (await exists(run.manifestPath)) ||
        (await readdir(run.checkpointsDir)).some((n) => /^step-\d+$/.test(n));
      if (hasRun)
        throw new MotifError(
          'ERR_MOTIF_INVALID_ARGUMENT',
          `${abs} already holds a training run; pass --resume to continue it, or choose another --run-dir`,
        );
    }
    // Leftovers of checkpoints that were being written when a run was killed.
    for (const n of await readdir(run.checkpointsDir))
      if (n.startsWith('.')) await rm(path.join(run.checkpointsDir, n), { recursive: true, force: true });
    await run.probeWritable();
    return run;
  }

  /**
   * Checks at startup, before any work is done, that files can be created in the run folder and its
   * checkpoints folder (a read-only folder or a full disk is reported now, not at the first checkpoint).
   */
  private async probeWritable(): Promise<void> {
    for (const dir of [this.dir, this.checkpointsDir]) {
      const probe = path.join(dir, `.write-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
      try {
        await beforeWrite(probe);
        await writeFile(probe, 'motif-native write probe\n');
      } catch (err) {
        throw new MotifError(
          'ERR_MOTIF_IO',
          `${dir}: the run folder is not writable (${reason(err)}); nothing was trained. Free space or choose another --run-dir`,
          { cause: err },
        );
      } finally {
        await rm(probe, { force: true }).catch(() => {});
      }
    }
  }

  /** Writes manifest.json (atomically). */
  async writeManifest(manifest: Record<string, unknown>): Promise<void> {
    await writeFileAtomic(this.manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  }

  /** Reads manifest.json, or undefined when there is none. */
  async readManifest(): Promise<Record<string, unknown> | undefined> {
    let text: string;
    try {
      text = await readFile(this.manifestPath, 'utf8');
    } catch {
      return undefined;
    }
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new MotifError('ERR_MOTIF_FORMAT', `${this.manifestPath}: not valid JSON (${(err as Error).message})`);
    }
  }

  /** Appends one line to metrics.jsonl. */
  async appendMetrics(metrics: Record<string, unknown>): Promise<void> {
    await this.append(this.metricsPath, `${JSON.stringify(metrics)}\n`);
  }

  private async append(file: string, text: string): Promise<void> {
    try {
      await beforeWrite(file);
      await appendFile(file, text);
    } catch (err) {
      throw new MotifError('ERR_MOTIF_IO', `${file}: cannot append (${reason(err)})`, { cause: err });
    }
  }

  /** Appends lines to samples.jsonl. */
  async appendSamples(samples: readonly Record<string, unknown>[]): Promise<void> {
    if (samples.length === 0) return;
    await this.append(this.samplesPath, samples.map((s) => `${JSON.stringify(s)}\n`).join(''));
  }

  /** Reads metrics.jsonl (a torn last line is left out). */
  async readMetrics(): Promise<Record<string, unknown>[]> {
    const text = await readFile(this.metricsPath, 'utf8').catch(() => '');
    return parseLog(text, this.metricsPath);
  }

  /** Rewrites metrics.jsonl and samples.jsonl keeping only lines of steps <= `step` (new file + rename). */
  async truncateLogs(step: number): Promise<void> {
    for (const file of [this.metricsPath, this.samplesPath]) {
      const text = await readFile(file, 'utf8').catch(() => '');
      const kept = parseLog(text, file).filter((o) => typeof o.step === 'number' && o.step <= step);
      await writeFileAtomic(file, kept.map((o) => `${JSON.stringify(o)}\n`).join(''));
    }
  }

  /**
   * Writes checkpoints/step-N: the adapter (PEFT files), the optimizer state and the trainer
   * state, into a temporary folder renamed into place when complete. Refuses non-finite tensors.
   */
  async saveCheckpoint(args: {
    state: TrainerState;
    lora: LoraConfig;
    adapter: ReadonlyMap<string, Float32Array>;
    optimizer: OptimizerState;
    modelConfig: ModelConfig;
    baseModel?: string | null;
  }): Promise<string> {
    const { state } = args;
    for (const [name, t] of [...args.adapter, ...args.optimizer.tensors])
      if (!allFinite(t))
        throw new MotifError(
          'ERR_MOTIF_INTERNAL',
          `checkpoint of step ${state.step}: tensor '${name}' holds NaN/Inf; not saved`,
        );
    const dir = path.join(this.checkpointsDir, `step-${state.step}`);
    try {
      await replaceDir(dir, async (tmp) => {
        await beforeWrite(path.join(tmp, ADAPTER_WEIGHTS));
        await writeAdapterFiles(tmp, args.lora, args.adapter, args.modelConfig, { baseModel: args.baseModel ?? null });
        const opt = new Map<string, TensorToWrite>();
        for (const [name, t] of args.optimizer.tensors) opt.set(name, { data: t, shape: [t.length] });
        await beforeWrite(path.join(tmp, OPTIMIZER_FILE));
        await writeSafetensors(path.join(tmp, OPTIMIZER_FILE), opt, {
          metadata: { optimizer: 'adamw', step: String(args.optimizer.step) },
        });
        await beforeWrite(path.join(tmp, TRAINER_STATE));
        await writeFile(path.join(tmp, TRAINER_STATE), `${JSON.stringify(state, null, 2)}\n`);
      });
    } catch (err) {
      // replaceDir removed its temporary folder; an earlier checkpoint is untouched.
      const previous = await latestCheckpoint(this.dir);
      throw new MotifError(
        'ERR_MOTIF_IO',
        `${dir}: cannot write the checkpoint of step ${state.step} (${reason(err)}); ` +
          (previous ? `the last complete checkpoint is ${previous.dir}` : 'there is no earlier checkpoint') +
          '; continue with --resume once the folder is writable',
        { cause: err },
      );
    }
    return dir;
  }

  /** Checkpoints `model`'s adapter and AdamW state with the trainer state `state` (see saveCheckpoint). */
  async checkpointModel(
    model: TrainableModel,
    state: Omit<TrainerState, 'format' | 'version' | 'time'>,
    baseModel?: string | null,
  ): Promise<string> {
    const lora = model.lora;
    if (!lora) throw new MotifError('ERR_MOTIF_INTERNAL', 'the model lost its adapter');
    return this.saveCheckpoint({
      state: { format: 'motif-native-trainer-state', version: 1, ...state, time: new Date().toISOString() },
      lora,
      adapter: await model.getAdapterTensors(),
      optimizer: await model.getOptimizerState(),
      modelConfig: model.config,
      baseModel,
    });
  }

  /** Reads a checkpoint folder back: trainer state, adapter (checked against the model config) and optimizer state. */
  static async loadCheckpoint(dir: string, modelConfig: ModelConfig): Promise<LoadedCheckpoint> {
    const stateFile = path.join(dir, TRAINER_STATE);
    let state: TrainerState;
    try {
      state = JSON.parse(await readFile(stateFile, 'utf8')) as TrainerState;
    } catch (err) {
      throw new MotifError(
        'ERR_MOTIF_FORMAT',
        `${stateFile}: cannot read the trainer state (${(err as Error).message})`,
      );
    }
    const { lora, tensors } = await readAdapter(dir, modelConfig);
    const file = await SafetensorsFile.open(path.join(dir, OPTIMIZER_FILE));
    try {
      const tensorsOpt = new Map<string, Float32Array>();
      for (const name of file.tensors.keys()) tensorsOpt.set(name, await readF32(file, name));
      const step = Number(file.metadata.step);
      if (!Number.isInteger(step) || step < 0)
        throw new MotifError('ERR_MOTIF_FORMAT', `${file.path}: __metadata__.step must be the optimizer's step count`);
      return { state, lora, adapter: tensors, optimizer: { step, tensors: tensorsOpt } };
    } finally {
      await file.close();
    }
  }
}

/** The fields a run's manifest.json starts with: format, time, package, Node, platform, argv, cwd and git state. */
export async function manifestHeader(
  format: string,
  argv: readonly string[] | undefined,
): Promise<Record<string, unknown>> {
  return {
    format,
    version: 1,
    createdAt: new Date().toISOString(),
    package: { name: 'motif-native', version },
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    argv: argv ?? null,
    cwd: process.cwd(),
    git: await gitState(process.cwd()),
  };
}

/** Writes the model's adapter to `<runDir>/adapter` (PEFT) after checking every tensor is finite; returns the folder. */
export async function saveFinalAdapter(
  model: TrainableModel,
  runDir: string,
  baseModel?: string | null,
): Promise<string> {
  for (const [name, t] of await model.getAdapterTensors())
    if (!allFinite(t))
      throw new MotifError(
        'ERR_MOTIF_INTERNAL',
        `the adapter's tensor '${name}' holds NaN/Inf; the final adapter was not written`,
      );
  const dir = path.join(runDir, 'adapter');
  await saveAdapter(model, dir, { baseModel: baseModel ?? null });
  return dir;
}

/**
 * Loads checkpoint folder `dir` into `model` (adapter weights and AdamW state) after checking it was
 * written with the settings of `configHash`; returns its trainer state.
 */
export async function restoreCheckpoint(model: TrainableModel, dir: string, configHash: string): Promise<TrainerState> {
  const loaded = await RunDir.loadCheckpoint(dir, model.config);
  if (loaded.state.configHash !== configHash)
    throw new MotifError(
      'ERR_MOTIF_FORMAT',
      `${dir}: the checkpoint was written with other settings (config hash ${loaded.state.configHash}, now ${configHash})`,
    );
  await model.setAdapterTensors(loaded.adapter);
  await model.setOptimizerState(loaded.optimizer);
  return loaded.state;
}

/** True when every value of `t` is finite. */
export function allFinite(t: Float32Array): boolean {
  for (let i = 0; i < t.length; i++) if (!Number.isFinite(t[i])) return false;
  return true;
}
