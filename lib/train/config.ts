/**
 * config.ts — the trainer's settings: every knob of a MOTIF / GRPO run with the paper's defaults
 * (DESIGN.md §4: the official MOTIF code's GRPOConfig and LoRA setup), validation with messages that
 * name the setting, and the hash that tells whether a resumed run is the same run.
 */
import { createHash } from 'node:crypto';
import { MotifError } from '../native/errors.js';
import { checkLoraConfig } from './peft.js';
import { LORA_TARGETS, type LossType, type ScaleRewards } from './types.js';

/** Training method: MOTIF (multi-round future-accuracy reward) or plain single-round GRPO. */
export type TrainMethod = 'motif' | 'grpo';

/** Every setting of a training run (JSON-serializable; stored in manifest.json). */
export interface TrainConfig {
  method: TrainMethod;
  /** Rounds R of the MOTIF protocol (GRPO: 1). */
  rounds: number;
  /** m: first-round samples per question (the GRPO group). */
  numGenerations: number;
  /** k: continuations (through rounds 2..R) of each first-round sample (GRPO: 0). */
  trajectories: number;
  /** 'current': continuations sample from the adapter being trained; 'base': without it (the official code). */
  continuationPolicy: 'current' | 'base';
  /** Optimizer steps. */
  steps: number;
  /** Questions per micro-batch (one rollout + one loss call). */
  batchSize: number;
  /** Micro-batches per optimizer step. */
  gradAccum: number;
  /** Tokens a round, at most. */
  maxTokens: number;
  /** First-round sampling (and the loss's logit temperature). */
  temperature: number;
  topP: number;
  /** Continuation sampling (rounds 2..R). */
  continuationTemperature: number;
  continuationTopP: number;
  lora: { rank: number; alpha: number; targets: string[]; rslora: boolean };
  lr: number;
  beta1: number;
  beta2: number;
  adamEps: number;
  weightDecay: number;
  warmupRatio: number;
  maxGradNorm: number;
  lossType: LossType;
  epsilon: number;
  epsilonHigh: number | null;
  /** KL coefficient (0: no reference pass). */
  beta: number;
  scaleRewards: ScaleRewards;
  /** Leave out groups whose rewards are all equal (they carry no gradient). */
  dropConstantGroups: boolean;
  /** Answer check of the correctness rewards and the accuracy metric. */
  rewardMetric: 'strict' | 'match';
  /** Use the official reward set (MOTIF: outcome + format; GRPO: format + correctness). */
  builtinRewards: boolean;
  /** A JS module of extra rewards (lib/motif loadRewardModule), or null. */
  rewardModule: string | null;
  /** A JSON file of prompt templates (lib/motif loadTemplates), or null. */
  templatesFile: string | null;
  /** Questions held out of training and evaluated at the end (a count, or a fraction when < 1). */
  evalSize: number;
  /** Checkpoint every N steps (and at the last step). */
  saveEvery: number;
  /** Trajectories written to samples.jsonl per step. */
  samplesPerStep: number;
  seed: number;
}

/** The paper's defaults (DESIGN.md §4) and this trainer's. */
export const DEFAULT_TRAIN_CONFIG: Readonly<TrainConfig> = Object.freeze({
  method: 'motif',
  rounds: 3,
  numGenerations: 8,
  trajectories: 4,
  continuationPolicy: 'current',
  steps: 1000,
  batchSize: 1,
  gradAccum: 1,
  maxTokens: 1024,
  temperature: 0.8,
  topP: 0.95,
  continuationTemperature: 0.8,
  continuationTopP: 0.95,
  lora: { rank: 64, alpha: 64, targets: [...LORA_TARGETS], rslora: false },
  lr: 5e-6,
  beta1: 0.9,
  beta2: 0.99,
  adamEps: 1e-8,
  weightDecay: 0.1,
  warmupRatio: 0.1,
  maxGradNorm: 0.1,
  lossType: 'grpo',
  epsilon: 0.2,
  epsilonHigh: null,
  beta: 0,
  scaleRewards: 'group',
  dropConstantGroups: false,
  rewardMetric: 'strict',
  builtinRewards: true,
  rewardModule: null,
  templatesFile: null,
  evalSize: 0,
  saveEvery: 100,
  samplesPerStep: 2,
  seed: 42,
}) as TrainConfig;

/** Settings that do not change what a run computes (may differ when resuming). */
const NON_SEMANTIC: ReadonlySet<string> = new Set(['saveEvery', 'samplesPerStep']);

function bad(name: string, expected: string, got: unknown): MotifError {
  return new MotifError('ERR_MOTIF_INVALID_ARGUMENT', `${name}: expected ${expected}, got ${JSON.stringify(got)}`);
}

function int(name: string, v: unknown, min: number): number {
  if (!Number.isInteger(v) || (v as number) < min) throw bad(name, `an integer >= ${min}`, v);
  return v as number;
}

function num(name: string, v: unknown, lo: number, hi: number, loOpen = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v > hi || (loOpen ? v <= lo : v < lo))
    throw bad(name, `a number in ${loOpen ? '(' : '['}${lo}, ${hi}]`, v);
  return v;
}

function oneOf<T extends string>(name: string, v: unknown, values: readonly T[]): T {
  if (!values.includes(v as T)) throw bad(name, `one of ${values.join(', ')}`, v);
  return v as T;
}

/** Fills defaults into `partial`, checks every setting, and normalizes GRPO to one round and no trajectories. */
export function resolveTrainConfig(partial: Partial<TrainConfig> = {}): TrainConfig {
  for (const k of Object.keys(partial))
    if (!Object.hasOwn(DEFAULT_TRAIN_CONFIG, k))
      throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', `unknown training setting '${k}'`);
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  const c: TrainConfig = {
    ...DEFAULT_TRAIN_CONFIG,
    ...defined,
    lora: { ...DEFAULT_TRAIN_CONFIG.lora, ...(partial.lora ?? {}) },
  };
  c.method = oneOf('method', c.method, ['motif', 'grpo'] as const);
  c.rounds = int('rounds', c.rounds, 1);
  c.numGenerations = int('numGenerations', c.numGenerations, 2);
  c.trajectories = int('trajectories', c.trajectories, 0);
  c.continuationPolicy = oneOf('continuationPolicy', c.continuationPolicy, ['current', 'base'] as const);
  c.steps = int('steps', c.steps, 1);
  c.batchSize = int('batchSize', c.batchSize, 1);
  c.gradAccum = int('gradAccum', c.gradAccum, 1);
  c.maxTokens = int('maxTokens', c.maxTokens, 1);
  num('temperature', c.temperature, 0, 100, true);
  num('topP', c.topP, 0, 1, true);
  num('continuationTemperature', c.continuationTemperature, 0, 100);
  num('continuationTopP', c.continuationTopP, 0, 1, true);
  int('lora.rank', c.lora.rank, 1);
  num('lora.alpha', c.lora.alpha, 0, 1e9, true);
  if (
    !Array.isArray(c.lora.targets) ||
    c.lora.targets.some((t) => !(LORA_TARGETS as readonly string[]).includes(t)) ||
    c.lora.targets.length === 0
  )
    throw bad('lora.targets', `a non-empty list from ${LORA_TARGETS.join(',')}`, c.lora.targets);
  checkLoraConfig({ ...c.lora, seed: 0 }, 'lora');
  c.lora.targets = LORA_TARGETS.filter((t) => c.lora.targets.includes(t));
  if (typeof c.lora.rslora !== 'boolean') throw bad('lora.rslora', 'a boolean', c.lora.rslora);
  num('lr', c.lr, 0, 1);
  num('beta1', c.beta1, 0, 1);
  num('beta2', c.beta2, 0, 1);
  num('adamEps', c.adamEps, 0, 1, true);
  num('weightDecay', c.weightDecay, 0, 10);
  num('warmupRatio', c.warmupRatio, 0, 1);
  if (typeof c.maxGradNorm !== 'number' || !(c.maxGradNorm >= 0))
    throw bad('maxGradNorm', 'a number >= 0', c.maxGradNorm);
  c.lossType = oneOf('lossType', c.lossType, ['grpo', 'bnpo', 'dr_grpo'] as const);
  num('epsilon', c.epsilon, 0, 10);
  if (c.epsilonHigh !== null) num('epsilonHigh', c.epsilonHigh, 0, 10);
  num('beta', c.beta, 0, 1e6);
  c.scaleRewards = oneOf('scaleRewards', c.scaleRewards, ['group', 'batch', 'none'] as const);
  c.rewardMetric = oneOf('rewardMetric', c.rewardMetric, ['strict', 'match'] as const);
  for (const k of ['dropConstantGroups', 'builtinRewards'] as const)
    if (typeof c[k] !== 'boolean') throw bad(k, 'a boolean', c[k]);
  if (c.evalSize < 0 || !Number.isFinite(c.evalSize) || (c.evalSize >= 1 && !Number.isInteger(c.evalSize)))
    throw bad('evalSize', 'a count of questions (integer >= 0) or a fraction in (0, 1)', c.evalSize);
  c.saveEvery = int('saveEvery', c.saveEvery, 1);
  c.samplesPerStep = int('samplesPerStep', c.samplesPerStep, 0);
  if (!Number.isSafeInteger(c.seed) || c.seed < 0) throw bad('seed', 'a non-negative integer', c.seed);
  if (c.method === 'grpo') {
    c.rounds = 1;
    c.trajectories = 0;
  } else if (c.rounds > 1 && c.trajectories < 1) {
    throw bad('trajectories', 'an integer >= 1 for MOTIF with more than one round', c.trajectories);
  } else if (c.rounds === 1) {
    c.trajectories = 0;
  }
  if (!c.builtinRewards && c.rewardModule === null)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      'builtinRewards is false but no rewardModule is given: no reward to train on',
    );
  return c;
}

/** The settings that decide what a run computes, as canonical JSON. */
function semantic(c: TrainConfig): string {
  const keys = Object.keys(c)
    .filter((k) => !NON_SEMANTIC.has(k))
    .sort();
  return JSON.stringify(keys.map((k) => [k, c[k as keyof TrainConfig]]));
}

/** sha256 of the semantic settings (everything but saveEvery / samplesPerStep). */
export function configHash(c: TrainConfig): string {
  return createHash('sha256').update(semantic(c)).digest('hex').slice(0, 16);
}

/** The semantic settings that differ between two configs (for the resume error message). */
export function configDifferences(a: TrainConfig, b: TrainConfig): string[] {
  return Object.keys(a)
    .filter((k) => !NON_SEMANTIC.has(k))
    .filter((k) => JSON.stringify(a[k as keyof TrainConfig]) !== JSON.stringify(b[k as keyof TrainConfig]))
    .map((k) => `${k}: ${JSON.stringify(a[k as keyof TrainConfig])} -> ${JSON.stringify(b[k as keyof TrainConfig])}`);
}
