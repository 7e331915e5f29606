/**
 * trainer.ts — `train(model, options)`: MOTIF (or plain GRPO) with LoRA, orchestrated in TypeScript
 * around a {@link TrainableModel} (DESIGN.md §1):
 *
 *   per optimizer step, gradAccum micro-batches of batchSize questions, each:
 *     rollout (lib/train/rollout.ts: round 1 with m samples; MOTIF: k continuations through rounds 2..R)
 *     rewards (lib/motif: MOTIF outcome over the k trajectories + format rewards; GRPO: format + correctness)
 *     group-relative advantages over the m samples (lib/train/advantages.ts), constant groups optionally dropped
 *     model.lossAndGradients on the first-round tokens (oldLogps = the sampling log-probs), accumulated
 *   then model.optimizerStep with the cosine-with-warmup lr; a NaN/Inf loss or gradient skips the update.
 *
 * Everything lands in a run folder (lib/train/run-dir.ts): manifest, one metrics line per step, sample
 * trajectories, checkpoints every saveEvery steps. `resume` continues from the latest checkpoint with the
 * same data order and sampling seeds, so a killed run reproduces the uninterrupted run's metrics.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { type DatasetOptions, type DatasetRow, loadDataset } from '../data/datasets.js';
import { splitTrainEval } from '../data/random.js';
import { DEFAULT_TEMPLATES, loadTemplates, type ProtocolTemplates } from '../motif/protocol.js';
import { grpoRewards, loadRewardModule, motifRewards, type RewardFn } from '../motif/rewards.js';
import { MotifError } from '../native/errors.js';
import { writeRunReport } from '../report/writeReport.js';
import { configDifferences, configHash, resolveTrainConfig, type TrainConfig } from './config.js';
import { type EvaluateResult, evaluate } from './evaluate.js';
import type { ProgressUpdate } from './progress.js';
import { DataOrder, SeedRng } from './rng.js';
import { type RolloutSettings, rollout } from './rollout.js';
import { latestCheckpoint, manifestHeader, RunDir, restoreCheckpoint, saveFinalAdapter } from './run-dir.js';
import { cosineWithWarmup } from './schedule.js';
import { processMicroBatch, StepStats } from './step.js';
import type { OptimizerOptions, TrainableModel } from './types.js';

/** Where progress goes (lib/train/progress.ts's ProgressBar is one). */
export interface ProgressSink {
  update(u: ProgressUpdate): void;
  log(message: string): void;
  done(): void;
}

/** Options of {@link train}: any {@link TrainConfig} setting plus the data, the run folder and hooks. */
export interface TrainOptions extends Partial<TrainConfig> {
  /** Rows, or a dataset file read with lib/data's loadDataset (and `datasetOptions`). */
  dataset: readonly DatasetRow[] | string;
  datasetOptions?: DatasetOptions;
  /** The run folder (created when missing). */
  runDir: string;
  /** Continue the run in runDir from its latest checkpoint (default false: runDir must not hold a run). */
  resume?: boolean;
  /** Replaces the reward set (builtinRewards / rewardModule are then not used). */
  rewards?: RewardFn[];
  /** Prompt templates (default: templatesFile's, else lib/motif's defaults). */
  templates?: ProtocolTemplates;
  /** base_model_name_or_path of the adapters written (the model folder or hub id). */
  baseModel?: string;
  /** Recorded in manifest.json: backend, device and anything else worth knowing. */
  environment?: Record<string, unknown>;
  /** The command line, recorded in manifest.json. */
  argv?: string[];
  /** More top-level fields for manifest.json (the CLI stores its resolved flags under `cli`). */
  manifestExtra?: Record<string, unknown>;
  progress?: ProgressSink;
  /** Warnings and notices (default: progress.log, else stderr). */
  log?: (message: string) => void;
  /** Called after each step's metrics are written. */
  onStep?: (metrics: Record<string, unknown>) => void | Promise<void>;
  /** Aborting stops after the current step's rollouts; the last finished step is checkpointed. */
  signal?: AbortSignal;
}

/** What {@link train} returns. */
export interface TrainResult {
  runDir: string;
  config: TrainConfig;
  /** Steps finished (in this process and before, when resumed). */
  stepsCompleted: number;
  skippedSteps: number;
  /** The final adapter (a PEFT folder), when at least one step ran. */
  adapterDir?: string;
  lastMetrics?: Record<string, unknown>;
  aborted: boolean;
  /** Evaluation of the held-out questions (evalSize > 0). */
  evaluation?: Omit<EvaluateResult, 'results'>;
}

function datasetFingerprint(rows: readonly DatasetRow[]): string {
  const h = createHash('sha256');
  for (const r of rows) h.update(`${r.id}\u0000${r.question}\u0000${r.answer}\u0001`);
  return h.digest('hex').slice(0, 16);
}

async function rewardSet(cfg: TrainConfig, override?: RewardFn[]): Promise<RewardFn[]> {
  if (override) {
    if (override.length === 0) throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', 'rewards: the list is empty');
    return override;
  }
  const metric = cfg.rewardMetric;
  const out: RewardFn[] = cfg.builtinRewards
    ? cfg.method === 'motif'
      ? motifRewards({ metric })
      : grpoRewards({ metric })
    : [];
  if (cfg.rewardModule !== null) out.push(...(await loadRewardModule(cfg.rewardModule)));
  const seen = new Set<string>();
  for (const r of out) {
    if (seen.has(r.name))
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `two rewards are named "${r.name}" (a reward module's names must differ from the built-in ones)`,
      );
    seen.add(r.name);
  }
  return out;
}

/** Zeroes the accumulated gradients without changing the adapter or optimizer (snapshot, step, restore). */
export async function discardGradients(model: TrainableModel, opt: OptimizerOptions): Promise<void> {
  const adapter = await model.getAdapterTensors();
  const state = await model.getOptimizerState();
  await model.optimizerStep({ ...opt, lr: 0 });
  await model.setAdapterTensors(adapter);
  await model.setOptimizerState(state);
}

/** Loads and splits the data: training rows, held-out rows. */
async function prepareData(
  options: TrainOptions,
  cfg: TrainConfig,
): Promise<{ train: DatasetRow[]; heldOut: DatasetRow[]; file?: string }> {
  const ds = options.dataset;
  const file = typeof ds === 'string' ? ds : undefined;
  const rows = typeof ds === 'string' ? (await loadDataset(ds, options.datasetOptions)).data : [...ds];
  if (rows.length === 0) throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', 'train: the dataset has no rows');
  if (cfg.evalSize === 0) return { train: rows, heldOut: [], file };
  const split = splitTrainEval(
    rows,
    cfg.evalSize < 1 ? { evalFraction: cfg.evalSize, seed: cfg.seed } : { evalSize: cfg.evalSize, seed: cfg.seed },
  );
  if (split.train.length === 0)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      `evalSize ${cfg.evalSize} holds out every one of the ${rows.length} rows`,
    );
  return { train: split.train, heldOut: split.eval, file };
}

/**
 * Trains `model`'s LoRA adapter with MOTIF or GRPO. Creates the adapter (or restores it from the
 * latest checkpoint with `resume`), runs the steps, writes the run folder, and returns a summary.
 */
export async function train(model: TrainableModel, options: TrainOptions): Promise<TrainResult> {
  const {
    dataset: _d,
    datasetOptions: _o,
    runDir: runDirPath,
    resume = false,
    rewards,
    templates: templatesOpt,
    baseModel,
    environment,
    argv,
    manifestExtra,
    progress,
    log: logOpt,
    onStep,
    signal,
    ...partial
  } = options;
  if (typeof runDirPath !== 'string' || runDirPath.length === 0)
    throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', 'train: runDir (the run folder) is required');
  const cfg = resolveTrainConfig(partial);
  const hash = configHash(cfg);
  const log = logOpt ?? ((m: string) => (progress ? progress.log(m) : console.error(m)));
  if (!model.tokenizer)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      'train: the model has no tokenizer (the folder needs tokenizer.json with a chat_template)',
    );
  const rewardFns = await rewardSet(cfg, rewards);
  const templates =
    templatesOpt ?? (cfg.templatesFile !== null ? await loadTemplates(cfg.templatesFile) : DEFAULT_TEMPLATES);
  const data = await prepareData(options, cfg);
  const fingerprint = datasetFingerprint(data.train);

  const run = await RunDir.open(runDirPath, { resume });
  const manifest = resume ? await run.readManifest() : undefined;
  if (manifest) {
    const diffs = configDifferences(manifest.config as TrainConfig, cfg);
    if (diffs.length > 0)
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `cannot resume ${run.dir}: the settings differ from the run's manifest.json (${diffs.join('; ')}); use the same settings or another --run-dir`,
      );
    const sorted = (o: unknown) => JSON.stringify(Object.entries(o ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)));
    const wasModel = (manifest.model as { config?: unknown } | undefined)?.config;
    if (sorted(wasModel) !== sorted(model.config))
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `cannot resume ${run.dir}: the model's config.json differs from the one the run started with`,
      );
    const was = (manifest.dataset as { fingerprint?: string } | undefined)?.fingerprint;
    if (was !== fingerprint)
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `cannot resume ${run.dir}: the training rows differ from the run's (dataset fingerprint ${was} vs ${fingerprint})`,
      );
  }

  await model.createLora({ ...cfg.lora, seed: cfg.seed });
  const order = new DataOrder(data.train.length, cfg.seed);
  const rng = new SeedRng((cfg.seed ^ 0x5bd1e995) >>> 0);
  const schedule = cosineWithWarmup({ lr: cfg.lr, totalSteps: cfg.steps, warmupRatio: cfg.warmupRatio });
  // The state as of the end of the last finished step (what a checkpoint records).
  const committed = { step: 0, cursor: 0, rng: rng.state, position: 0, lastLr: 0, skipped: 0 };

  const ck = resume ? await latestCheckpoint(run.dir) : undefined;
  if (ck && !manifest)
    throw new MotifError(
      'ERR_MOTIF_FORMAT',
      `${run.dir}: has checkpoints but no manifest.json; it is not a run folder this trainer can resume`,
    );
  if (ck && manifest) {
    const s = await restoreCheckpoint(model, ck.dir, hash);
    Object.assign(committed, {
      step: s.step,
      cursor: s.dataCursor,
      rng: s.rngState,
      position: s.schedule.position,
      lastLr: s.schedule.lastLr,
      skipped: s.skippedSteps,
    });
    rng.state = s.rngState;
    await run.truncateLogs(s.step);
    const resumes = Array.isArray(manifest.resumes) ? manifest.resumes : [];
    await run.writeManifest({
      ...manifest,
      resumes: [...resumes, { time: new Date().toISOString(), fromStep: s.step }],
    });
    log(`resuming ${run.dir} from checkpoint step ${s.step}`);
  } else {
    if (resume && manifest) log(`no complete checkpoint in ${run.dir}: starting the run over`);
    await run.writeManifest({
      ...(await manifestHeader('motif-native-run', argv)),
      seed: cfg.seed,
      config: cfg,
      configHash: hash,
      model: { base: baseModel ?? null, config: model.config, ...environment },
      dataset: {
        file: data.file ?? null,
        trainRows: data.train.length,
        heldOutRows: data.heldOut.length,
        heldOutIds: data.heldOut.map((r) => r.id),
        fingerprint,
      },
      rewards: rewardFns.map((r) => ({ name: r.name, weight: r.weight })),
      templates,
      resumes: [],
      ...manifestExtra,
    });
    await run.truncateLogs(0);
  }

  const settings: RolloutSettings = {
    prompt: cfg.method === 'motif' ? 'motif' : 'grpo',
    rounds: cfg.rounds,
    samples: cfg.numGenerations,
    trajectories: cfg.trajectories,
    maxTokens: cfg.maxTokens,
    temperature: cfg.temperature,
    topP: cfg.topP,
    continuationTemperature: cfg.continuationTemperature,
    continuationTopP: cfg.continuationTopP,
    continuationPolicy: cfg.continuationPolicy,
    templates,
  };
  const opt: Omit<OptimizerOptions, 'lr'> = {
    beta1: cfg.beta1,
    beta2: cfg.beta2,
    eps: cfg.adamEps,
    weightDecay: cfg.weightDecay,
    maxGradNorm: cfg.maxGradNorm,
  };
  let lastCheckpoint = ck?.step ?? 0;
  let lastSkipped = false;
  const saveCheckpoint = async () => {
    await run.checkpointModel(
      model,
      {
        step: committed.step,
        dataCursor: committed.cursor,
        rngState: committed.rng,
        schedule: { position: committed.position, lastLr: committed.lastLr },
        configHash: hash,
        skippedSteps: committed.skipped,
      },
      baseModel,
    );
    lastCheckpoint = committed.step;
  };

  let lastMetrics: Record<string, unknown> | undefined;
  let aborted = false;
  let cursor = committed.cursor;
  for (let step = committed.step + 1; step <= cfg.steps; step++) {
    if (signal?.aborted) {
      aborted = true;
      break;
    }
    const t0 = performance.now();
    const stats = new StepStats(rewardFns.map((r) => r.name));
    const samples: Record<string, unknown>[] = [];
    let anyLoss = false;
    let nonFiniteLoss = false;
    for (let micro = 0; micro < cfg.gradAccum && !aborted; micro++) {
      const rows: DatasetRow[] = [];
      for (let i = 0; i < cfg.batchSize; i++) rows.push(data.train[order.at(cursor++).index] as DatasetRow);
      const tr = performance.now();
      const ro = await rollout(
        model,
        rows.map((r) => r.question),
        settings,
        () => rng.nextSeed(),
        signal,
      );
      stats.rolloutSeconds += (performance.now() - tr) / 1000;
      if (signal?.aborted) {
        aborted = true;
        break;
      }
      const mb = await processMicroBatch({ cfg, rows, ro, rewardFns, stats, step, micro, samples });
      if (!mb.batch) continue;
      const tt = performance.now();
      // gradients: false — they go to the accumulators only, with no per-call copy back to JS.
      const res = await model.lossAndGradients(mb.batch, {
        accumulate: true,
        scale: 1 / cfg.gradAccum,
        gradients: false,
      });
      stats.trainSeconds += (performance.now() - tt) / 1000;
      stats.addLoss(res);
      anyLoss = true;
      if (!Number.isFinite(res.loss)) nonFiniteLoss = true;
    }
    if (aborted) {
      if (anyLoss) await discardGradients(model, { ...opt, lr: 0 });
      break;
    }
    const lr = schedule.lrAt(committed.position);
    let gradNorm: number | null = null;
    let skipped = false;
    let warning: string | undefined;
    const tu = performance.now();
    if (anyLoss && nonFiniteLoss) {
      await discardGradients(model, { ...opt, lr });
      skipped = true;
      warning = `non-finite loss (${stats.lossValue()}); the update was skipped`;
    } else if (anyLoss) {
      const r = await model.optimizerStep({ ...opt, lr });
      gradNorm = r.gradNorm;
      if (r.skipped) {
        skipped = true;
        warning = `non-finite gradient (norm ${r.gradNorm}); the update was skipped`;
      }
    }
    stats.trainSeconds += (performance.now() - tu) / 1000;
    Object.assign(committed, {
      step,
      cursor,
      rng: rng.state,
      position: committed.position + 1,
      lastLr: lr,
      skipped: committed.skipped + (skipped ? 1 : 0),
    });
    lastSkipped = skipped;
    const metrics = stats.metrics({
      step,
      epoch: cursor / data.train.length,
      lr,
      gradNorm,
      updated: anyLoss && !skipped,
      skipped,
      warning,
      stepSeconds: (performance.now() - t0) / 1000,
    });
    lastMetrics = metrics;
    await run.appendMetrics(metrics);
    await run.appendSamples(samples);
    progress?.update({
      step,
      reward: stats.rewardMean(),
      accuracy: stats.accuracy(),
      loss: stats.lossValue() ?? undefined,
      tokensPerSecond: (metrics.timing as { tokensPerSecond: number }).tokensPerSecond,
      skipped,
    });
    if (warning) log(`step ${step}: ${warning}`);
    await onStep?.(metrics);
    if (step % cfg.saveEvery === 0 || step === cfg.steps) {
      if (skipped) log(`step ${step}: no checkpoint written (the step's update was skipped)`);
      else await saveCheckpoint();
    }
  }
  if (aborted && committed.step > lastCheckpoint && !lastSkipped) {
    await saveCheckpoint();
    log(`stopped after step ${committed.step}; checkpoint written (continue with --resume)`);
  }
  progress?.done();

  const result: TrainResult = {
    runDir: run.dir,
    config: cfg,
    stepsCompleted: committed.step,
    skippedSteps: committed.skipped,
    lastMetrics,
    aborted,
  };
  if (committed.step > 0) result.adapterDir = await saveFinalAdapter(model, run.dir, baseModel);
  if (data.heldOut.length > 0 && !aborted) {
    const ev = await evaluate(model, {
      dataset: data.heldOut,
      rounds: cfg.rounds,
      prompt: cfg.method === 'motif' ? 'motif' : 'grpo',
      maxTokens: cfg.maxTokens,
      templates,
      out: path.join(run.dir, 'eval.jsonl'),
      signal,
    });
    const { results: _r, ...summary } = ev;
    result.evaluation = summary;
    log(
      `held-out evaluation (${ev.problems} questions): strict ${(100 * ev.strict.accuracy).toFixed(1)}%, match ${(100 * ev.match.accuracy).toFixed(1)}%`,
    );
  }
  // The run's charts; a report that cannot be written costs a warning, never the run.
  await writeRunReport(run.dir).catch((err: Error) => log(`report.html not written: ${err.message}`));
  return result;
}
