/**
 * training.ts — the LoRA/GRPO training methods of Model, over the addon's training calls: the
 * adapter's tensors by PEFT name, lossAndGradients, AdamW and its state. Validation lives here;
 * the math (loss, backward, optimizer) stays native.
 */
import type { AddonModel } from '../native/binding.js';
import { invalidParameterError, MotifError } from '../native/errors.js';
import {
  type GrpoBatch,
  LORA_TARGETS,
  type LoraConfig,
  type LossResult,
  type OptimizerOptions,
  type OptimizerState,
} from '../train/types.js';

/** Native view of a batch: typed arrays, flattened per-token arrays, defaults filled in. */
export function toNativeBatch(batch: GrpoBatch, vocab: number): Record<string, unknown> {
  if (batch === null || typeof batch !== 'object') throw invalidParameterError('batch', 'a GRPO batch object', batch);
  const n = batch.completionIds?.length ?? 0;
  if (!Array.isArray(batch.completionIds) || n === 0)
    throw invalidParameterError('batch.completionIds', 'a non-empty array of token id arrays', batch.completionIds);
  if (!Array.isArray(batch.promptIds) || batch.promptIds.length === 0)
    throw invalidParameterError('batch.promptIds', 'an array of token id arrays', batch.promptIds);
  const groupSize = batch.groupSize;
  if (!Number.isInteger(groupSize) || groupSize < 1 || n % groupSize !== 0)
    throw invalidParameterError('batch.groupSize', `a positive integer dividing the ${n} completions`, groupSize);
  const groups = n / groupSize;
  const perGroup = batch.promptIds.length === groups && groups !== n;
  if (!perGroup && batch.promptIds.length !== n)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      `batch.promptIds must have one prompt per group (${groups}) or per completion (${n}), got ${batch.promptIds.length}`,
    );
  const ids = (list: readonly number[], where: string) => {
    if (!Array.isArray(list) || list.length === 0)
      throw invalidParameterError(where, 'a non-empty array of token ids', list);
    for (let i = 0; i < list.length; i++)
      if (!Number.isInteger(list[i]) || list[i] < 0 || list[i] >= vocab)
        throw invalidParameterError(`${where}[${i}]`, `a token id in [0, ${vocab})`, list[i]);
    return Int32Array.from(list);
  };
  const prompts = batch.promptIds.map((p, i) => ids(p, `batch.promptIds[${i}]`));
  const completions = batch.completionIds.map((c, i) => ids(c, `batch.completionIds[${i}]`));
  const promptOf = Int32Array.from({ length: n }, (_, i) => (perGroup ? Math.floor(i / groupSize) : i));
  const rewards = batch.rewards ?? [];
  if (batch.advantages === undefined && rewards.length !== n)
    throw invalidParameterError('batch.rewards', `${n} rewards (one per completion)`, batch.rewards);
  const flat = (lists: number[][] | undefined, where: string) => {
    if (lists === undefined) return new Float32Array(0);
    if (!Array.isArray(lists) || lists.length !== n)
      throw invalidParameterError(where, `${n} arrays (one per completion)`, lists);
    lists.forEach((l, i) => {
      if (!Array.isArray(l) || l.length !== completions[i].length)
        throw invalidParameterError(
          `${where}[${i}]`,
          `${completions[i].length} log-probs (one per completion token)`,
          l,
        );
    });
    return Float32Array.from(lists.flat());
  };
  const num = (v: unknown, where: string, ok: (x: number) => boolean, expected: string) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw invalidParameterError(where, expected, v);
    return v;
  };
  const lossType = batch.lossType ?? 'grpo';
  if (!['grpo', 'bnpo', 'dr_grpo', 'sft'].includes(lossType))
    throw invalidParameterError('batch.lossType', "'grpo', 'bnpo', 'dr_grpo' or 'sft'", batch.lossType);
  const scaleRewards = batch.scaleRewards ?? 'group';
  if (!['group', 'batch', 'none'].includes(scaleRewards))
    throw invalidParameterError('batch.scaleRewards', "'group', 'batch' or 'none'", batch.scaleRewards);
  const epsilon = num(batch.epsilon, 'batch.epsilon', (x) => x >= 0, 'a number >= 0');
  return {
    prompts,
    promptOf,
    completions,
    rewards: Float32Array.from(rewards.length === n ? rewards : new Array(n).fill(0)),
    groupSize,
    lossType,
    epsilon,
    epsilonHigh:
      batch.epsilonHigh === undefined
        ? epsilon
        : num(batch.epsilonHigh, 'batch.epsilonHigh', (x) => x >= 0, 'a number >= 0'),
    beta: num(batch.beta ?? 0, 'batch.beta', (x) => x >= 0, 'a number >= 0'),
    temperature: num(batch.temperature ?? 1, 'batch.temperature', (x) => x > 0, 'a number > 0'),
    maxCompletionLength:
      batch.maxCompletionLength === undefined
        ? 0
        : num(
            batch.maxCompletionLength,
            'batch.maxCompletionLength',
            (x) => Number.isInteger(x) && x > 0,
            'a positive integer',
          ),
    scaleRewards,
    oldLogps: flat(batch.oldLogps, 'batch.oldLogps'),
    refLogps: flat(batch.refLogps, 'batch.refLogps'),
    advantages:
      batch.advantages === undefined
        ? new Float32Array(0)
        : (() => {
            if (!Array.isArray(batch.advantages) || batch.advantages.length !== n)
              throw invalidParameterError('batch.advantages', `${n} numbers`, batch.advantages);
            return Float32Array.from(batch.advantages);
          })(),
  };
}

/** The bit mask of LoRA targets the addon takes (bit i = LORA_TARGETS[i]). */
export function targetMask(targets: readonly string[]): number {
  if (!Array.isArray(targets) || targets.length === 0)
    throw invalidParameterError('lora.targets', `a non-empty subset of ${LORA_TARGETS.join(', ')}`, targets);
  let mask = 0;
  for (const t of targets) {
    const i = (LORA_TARGETS as readonly string[]).indexOf(t);
    if (i < 0) throw invalidParameterError('lora.targets', `names among ${LORA_TARGETS.join(', ')}`, t);
    mask |= 1 << i;
  }
  return mask;
}

export function validateLoraConfig(c: LoraConfig): LoraConfig {
  if (c === null || typeof c !== 'object') throw invalidParameterError('lora', 'a LoRA config object', c);
  if (!Number.isInteger(c.rank) || c.rank < 1 || c.rank > 4096)
    throw invalidParameterError('lora.rank', 'an integer in [1, 4096]', c.rank);
  if (typeof c.alpha !== 'number' || !(c.alpha > 0))
    throw invalidParameterError('lora.alpha', 'a positive number', c.alpha);
  targetMask(c.targets);
  const seed = c.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw invalidParameterError('lora.seed', 'a non-negative integer', c.seed);
  return { rank: c.rank, alpha: c.alpha, targets: [...c.targets], rslora: Boolean(c.rslora), seed };
}

/** Every adapter tensor (which: weight | exp_avg | exp_avg_sq) by PEFT name. */
export function readAdapter(native: AddonModel, which: 'weight' | 'exp_avg' | 'exp_avg_sq'): Map<string, Float32Array> {
  const info = native.loraInfo();
  if (!info)
    throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', 'the model has no LoRA adapter: call createLora() or load one');
  return new Map(info.names.map((name) => [name, native.readLora(name, which)]));
}

/** The engine's list of full-parameter tensors; throws when full-parameter training is off. */
export function requireFullInfo(native: AddonModel, what: string): { names: string[]; shapes: number[][] } {
  const info = native.fullInfo();
  if (!info)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      `${what}: full-parameter training is not enabled on this model (call enableFullTraining() first)`,
    );
  return info;
}

/** Writes tensors by PEFT name; every name must exist with the right size. */
export function writeAdapter(
  native: AddonModel,
  which: 'weight' | 'exp_avg' | 'exp_avg_sq',
  tensors: Map<string, Float32Array>,
) {
  const info = native.loraInfo();
  if (!info)
    throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', 'the model has no LoRA adapter: call createLora() first');
  for (const [i, name] of info.names.entries()) {
    const t = tensors.get(name);
    const [r, c] = info.shapes[i];
    if (!(t instanceof Float32Array) || t.length !== r * c)
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `adapter tensor ${name} (${which}) must be a Float32Array of ${r}x${c}, got ${t === undefined ? 'nothing' : String(t.length)}`,
      );
    native.writeLora(name, which, t);
  }
}

export function toLossResult(out: Awaited<ReturnType<AddonModel['lossAndGradients']>>): LossResult & {
  logps: Float32Array;
  advantages: Float32Array;
} {
  return {
    loss: out.loss,
    grads: new Map(Object.entries(out.grads ?? {})),
    stats: { tokens: out.tokens, clipFraction: out.clipFraction, kl: out.kl },
    logps: out.logps,
    advantages: out.advantages,
  };
}

export function validateOptimizer(o: OptimizerOptions): OptimizerOptions {
  const pos = (v: unknown, where: string) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw invalidParameterError(where, 'a number >= 0', v);
    return v;
  };
  return {
    lr: pos(o.lr, 'optimizer.lr'),
    beta1: pos(o.beta1, 'optimizer.beta1'),
    beta2: pos(o.beta2, 'optimizer.beta2'),
    eps: pos(o.eps, 'optimizer.eps'),
    weightDecay: pos(o.weightDecay, 'optimizer.weightDecay'),
    maxGradNorm: o.maxGradNorm === Number.POSITIVE_INFINITY ? 0 : pos(o.maxGradNorm, 'optimizer.maxGradNorm'),
  };
}

export type { OptimizerState };
