/**
 * advantages.ts — GRPO's group-relative advantages, exactly as TRL's GRPOTrainer computes them:
 * A = r − mean(group), divided by (std + 1e-4) where std is the group's unbiased std
 * (`scaleRewards: 'group'`), the whole batch's unbiased std (`'batch'`), or not divided (`'none'`).
 * Also which groups carry no signal (every reward equal: all advantages 0), so the trainer can drop them.
 */
import type { ScaleRewards } from './types.js';

/** TRL's epsilon in the advantage denominator. */
export const ADVANTAGE_EPS = 1e-4;

/** What {@link groupAdvantages} returns. */
export interface Advantages {
  /** One per reward, in input order. */
  advantages: number[];
  /** Per group: mean reward. */
  groupMean: number[];
  /** Per group: unbiased std of the rewards. */
  groupStd: number[];
  /** Per group: true when every reward of the group is equal (no gradient signal). */
  constant: boolean[];
}

function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Unbiased (n − 1) standard deviation, as torch.std; NaN for a single value. */
export function unbiasedStd(xs: readonly number[]): number {
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / (xs.length - 1));
}

/**
 * Advantages of `rewards` laid out as consecutive groups of `groupSize` (the m samples of one
 * question). Throws when the length is not a multiple of the group size or the group size is < 2.
 */
export function groupAdvantages(
  rewards: readonly number[],
  groupSize: number,
  scale: ScaleRewards = 'group',
): Advantages {
  if (!Number.isInteger(groupSize) || groupSize < 2)
    throw new RangeError(`groupAdvantages: groupSize must be an integer >= 2, got ${groupSize}`);
  if (rewards.length === 0 || rewards.length % groupSize !== 0)
    throw new RangeError(`groupAdvantages: ${rewards.length} rewards do not make groups of ${groupSize}`);
  if (scale !== 'group' && scale !== 'batch' && scale !== 'none')
    throw new RangeError(`groupAdvantages: scale must be 'group', 'batch' or 'none', got '${String(scale)}'`);
  const groups = rewards.length / groupSize;
  const groupMean: number[] = [];
  const groupStd: number[] = [];
  const constant: boolean[] = [];
  for (let g = 0; g < groups; g++) {
    const xs = rewards.slice(g * groupSize, (g + 1) * groupSize);
    groupMean.push(mean(xs));
    groupStd.push(unbiasedStd(xs));
    constant.push(xs.every((x) => x === xs[0]));
  }
  const batchStd = scale === 'batch' ? unbiasedStd(rewards) : 0;
  const advantages = rewards.map((r, i) => {
    const g = Math.floor(i / groupSize);
    const a = r - (groupMean[g] as number);
    if (scale === 'none') return a;
    const std = scale === 'group' ? (groupStd[g] as number) : batchStd;
    return a / (std + ADVANTAGE_EPS);
  });
  return { advantages, groupMean, groupStd, constant };
}
