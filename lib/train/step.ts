/**
 * step.ts — one micro-batch of a training step after its rollout: rewards (lib/motif computeRewards),
 * group-relative advantages, the optional dropping of constant groups, the GRPO batch handed to
 * lossAndGradients, the sample trajectories for samples.jsonl; and StepStats, which gathers a step's
 * numbers over its micro-batches into one metrics.jsonl object.
 */
import type { DatasetRow } from '../data/datasets.js';
import { computeRewards, type RewardFn, type RewardInput } from '../motif/rewards.js';
import { gradeResponse } from '../text/answers.js';
import { groupAdvantages } from './advantages.js';
import type { TrainConfig } from './config.js';
import type { RolloutResult } from './rollout.js';
import type { GrpoBatch, LossResult } from './types.js';

/** Mean and (population) standard deviation; nulls when empty. */
export function meanStd(xs: readonly number[]): { mean: number | null; std: number | null } {
  if (xs.length === 0) return { mean: null, std: null };
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.reduce((a, b) => a + (b - m) * (b - m), 0) / xs.length;
  return { mean: m, std: Math.sqrt(v) };
}

function minMeanMax(xs: readonly number[]): { mean: number | null; min: number | null; max: number | null } {
  if (xs.length === 0) return { mean: null, min: null, max: null };
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const x of xs) {
    min = Math.min(min, x);
    max = Math.max(max, x);
    sum += x;
  }
  return { mean: sum / xs.length, min, max };
}

/** A step's numbers, gathered over its micro-batches. */
export class StepStats {
  readonly totals: number[] = [];
  readonly components: Record<string, number[]>;
  readonly groupStds: number[] = [];
  groups = 0;
  constantGroups = 0;
  droppedGroups = 0;
  finals = 0;
  correctFinals = 0;
  readonly firstLengths: number[] = [];
  readonly continuationLengths: number[] = [];
  completions = 0;
  truncated = 0;
  firstTokens = 0;
  continuationTokens = 0;
  readonly losses: number[] = [];
  lossTokens = 0;
  klSum = 0;
  clipSum = 0;
  rolloutSeconds = 0;
  trainSeconds = 0;

  constructor(rewardNames: readonly string[]) {
    this.components = Object.fromEntries(rewardNames.map((n) => [n, []]));
  }

  /** Adds a lossAndGradients result. */
  addLoss(r: LossResult): void {
    this.losses.push(r.loss);
    this.lossTokens += r.stats.tokens;
    this.klSum += r.stats.kl * r.stats.tokens;
    this.clipSum += r.stats.clipFraction * r.stats.tokens;
  }

  /** Mean loss over the micro-batches that had one (NaN when one was NaN), or null. */
  lossValue(): number | null {
    return this.losses.length ? this.losses.reduce((a, b) => a + b, 0) / this.losses.length : null;
  }

  rewardMean(): number | undefined {
    return meanStd(this.totals).mean ?? undefined;
  }

  /** Fraction of final responses that are right. */
  accuracy(): number | undefined {
    return this.finals ? this.correctFinals / this.finals : undefined;
  }

  /** The metrics.jsonl object of the step. Timing fields sit under `timing` (they differ run to run). */
  metrics(extra: {
    step: number;
    epoch: number;
    lr: number;
    gradNorm: number | null;
    updated: boolean;
    skipped: boolean;
    warning?: string;
    stepSeconds: number;
  }): Record<string, unknown> {
    const generated = this.firstTokens + this.continuationTokens;
    const loss = this.lossValue();
    const out: Record<string, unknown> = {
      step: extra.step,
      epoch: extra.epoch,
      lr: extra.lr,
      loss: loss === null ? null : Number.isFinite(loss) ? loss : String(loss),
      gradNorm:
        extra.gradNorm === null ? null : Number.isFinite(extra.gradNorm) ? extra.gradNorm : String(extra.gradNorm),
      updated: extra.updated,
      skipped: extra.skipped,
      reward: meanStd(this.totals),
      rewards: Object.fromEntries(Object.entries(this.components).map(([k, v]) => [k, meanStd(v)])),
      rewardGroupStd: meanStd(this.groupStds).mean,
      fracRewardZeroStd: this.groups ? this.constantGroups / this.groups : null,
      accuracy: this.accuracy() ?? null,
      kl: this.lossTokens ? this.klSum / this.lossTokens : null,
      clipFraction: this.lossTokens ? this.clipSum / this.lossTokens : null,
      completionLength: minMeanMax(this.firstLengths),
      continuationLength: minMeanMax(this.continuationLengths),
      truncatedFraction: this.completions ? this.truncated / this.completions : null,
      tokens: {
        generated,
        firstRound: this.firstTokens,
        continuations: this.continuationTokens,
        loss: this.lossTokens,
      },
      groups: { total: this.groups, constant: this.constantGroups, dropped: this.droppedGroups },
      timing: {
        rolloutSeconds: this.rolloutSeconds,
        trainSeconds: this.trainSeconds,
        stepSeconds: extra.stepSeconds,
        tokensPerSecond: this.rolloutSeconds > 0 ? generated / this.rolloutSeconds : null,
        time: new Date().toISOString(),
      },
    };
    if (extra.warning !== undefined) out.warning = extra.warning;
    return out;
  }
}

/** What one micro-batch needs besides its rollout. */
export interface MicroBatchInput {
  cfg: TrainConfig;
  rows: readonly DatasetRow[];
  ro: RolloutResult;
  rewardFns: readonly RewardFn[];
  stats: StepStats;
  step: number;
  micro: number;
  /** Sample records are pushed here until cfg.samplesPerStep are collected. */
  samples: Record<string, unknown>[];
}

/**
 * Scores a rolled-out micro-batch, records its numbers and samples, and builds its GRPO batch
 * (undefined when every group was dropped as constant).
 */
export async function processMicroBatch(x: MicroBatchInput): Promise<{ batch?: GrpoBatch }> {
  const { cfg, rows, ro, stats } = x;
  const m = cfg.numGenerations;
  const inputs: RewardInput[] = ro.first.map((c, i) => {
    const row = rows[Math.floor(i / m)] as DatasetRow;
    const traj = ro.trajectories[i] ?? [];
    return { question: row.question, reference: row.answer, response: c.text, trajectories: traj, row };
  });
  const scores = await computeRewards(x.rewardFns, inputs);
  const adv = groupAdvantages(scores.total, m, cfg.scaleRewards);
  // Accuracy over final responses: the last round of each trajectory (the response itself for one round).
  const correct: boolean[][] = inputs.map((inp) => {
    const finals = inp.trajectories?.length
      ? inp.trajectories.map((t) => t[t.length - 1] ?? inp.response)
      : [inp.response];
    return finals.map((f) => gradeResponse(f, inp.reference, { metric: cfg.rewardMetric }));
  });
  for (const c of correct) {
    stats.finals += c.length;
    stats.correctFinals += c.filter(Boolean).length;
  }
  stats.totals.push(...scores.total);
  for (const [k, v] of Object.entries(scores.components)) {
    stats.components[k] = [...(stats.components[k] ?? []), ...v];
  }
  stats.groupStds.push(...adv.groupStd);
  stats.groups += adv.constant.length;
  stats.constantGroups += adv.constant.filter(Boolean).length;
  stats.firstLengths.push(...ro.first.map((c) => c.tokens.length));
  stats.continuationLengths.push(...ro.continuationLengths);
  stats.completions += ro.first.length + ro.continuationLengths.length;
  stats.truncated += ro.truncated;
  stats.firstTokens += ro.firstTokens;
  stats.continuationTokens += ro.continuationTokens;

  // Samples: completion 0 of each question first, then completion 1, ...
  for (let j = 0; j < m && x.samples.length < cfg.samplesPerStep; j++)
    for (let g = 0; g < rows.length && x.samples.length < cfg.samplesPerStep; g++) {
      const i = g * m + j;
      const inp = inputs[i] as RewardInput;
      const row = rows[g] as DatasetRow;
      x.samples.push({
        step: x.step,
        micro: x.micro,
        id: row.id,
        question: row.question,
        reference: row.answer,
        sample: j,
        firstRound: inp.response,
        trajectories: (inp.trajectories ?? []).map((t) => [inp.response, ...t]),
        correct: correct[i],
        reward: scores.total[i],
        components: Object.fromEntries(Object.entries(scores.components).map(([k, v]) => [k, v[i]])),
        advantage: adv.advantages[i],
        finishReason: ro.first[i]?.finishReason,
      });
    }

  const keep = adv.constant.map((c) => !(cfg.dropConstantGroups && c));
  stats.droppedGroups += keep.filter((k) => !k).length;
  if (!keep.some(Boolean)) return {};
  const promptIds: number[][] = [];
  const completionIds: number[][] = [];
  const oldLogps: number[][] = [];
  const rewards: number[] = [];
  const advantages: number[] = [];
  keep.forEach((k, g) => {
    if (!k) return;
    promptIds.push(Array.from(ro.promptIds[g] as Int32Array));
    for (let j = 0; j < m; j++) {
      const i = g * m + j;
      const c = ro.first[i];
      if (!c) continue;
      completionIds.push(Array.from(c.tokens));
      oldLogps.push(Array.from(c.logprobs));
      rewards.push(scores.total[i] as number);
      advantages.push(adv.advantages[i] as number);
    }
  });
  const batch: GrpoBatch = {
    promptIds,
    completionIds,
    rewards,
    advantages,
    groupSize: m,
    lossType: cfg.lossType,
    epsilon: cfg.epsilon,
    beta: cfg.beta,
    temperature: cfg.temperature,
    maxCompletionLength: cfg.maxTokens,
    scaleRewards: cfg.scaleRewards,
    oldLogps,
  };
  if (cfg.epsilonHigh !== null) batch.epsilonHigh = cfg.epsilonHigh;
  return { batch };
}
