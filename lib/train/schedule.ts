/**
 * schedule.ts — the learning-rate schedule: linear warmup then cosine decay to 0, exactly as
 * transformers' `get_cosine_schedule_with_warmup` (num_cycles 0.5) with the warmup length that
 * `TrainingArguments.get_warmup_steps` derives from a ratio: ceil(total x ratio).
 *
 * Steps are optimizer updates counted from 0, and `lrAt(s)` is the rate the update `s` uses: as in
 * transformers, where the scheduler is stepped after the optimizer, the first update of a run with
 * warmup uses lr 0.
 */

/** Options of {@link cosineWithWarmup}. */
export interface CosineScheduleOptions {
  /** Peak learning rate (reached at the end of warmup). */
  lr: number;
  /** Optimizer updates in the whole run. */
  totalSteps: number;
  /** Warmup length as a fraction of totalSteps (rounded up). Ignored when warmupSteps is given. */
  warmupRatio?: number;
  /** Warmup length in updates. */
  warmupSteps?: number;
}

/** A learning-rate schedule: the rate of update `step` (0-based). */
export interface LrSchedule {
  /** Updates of warmup. */
  readonly warmupSteps: number;
  readonly totalSteps: number;
  lrAt(step: number): number;
}

/** transformers' warmup length from a ratio: ceil(totalSteps x ratio). */
export function warmupStepsFor(totalSteps: number, warmupRatio: number): number {
  return Math.ceil(totalSteps * warmupRatio);
}

/** The multiplier of get_cosine_schedule_with_warmup's lr_lambda at `step`. */
export function cosineFactor(step: number, warmupSteps: number, totalSteps: number, numCycles = 0.5): number {
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
}

/** Linear warmup to `lr`, then cosine decay to 0 at `totalSteps`. */
export function cosineWithWarmup(options: CosineScheduleOptions): LrSchedule {
  const { lr, totalSteps } = options;
  if (!(lr >= 0) || !Number.isFinite(lr)) throw new RangeError(`schedule: lr must be a finite number >= 0, got ${lr}`);
  if (!Number.isInteger(totalSteps) || totalSteps < 1)
    throw new RangeError(`schedule: totalSteps must be a positive integer, got ${totalSteps}`);
  const ratio = options.warmupRatio ?? 0;
  if (!(ratio >= 0 && ratio <= 1)) throw new RangeError(`schedule: warmupRatio must be in [0, 1], got ${ratio}`);
  const warmupSteps = options.warmupSteps ?? warmupStepsFor(totalSteps, ratio);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0)
    throw new RangeError(`schedule: warmupSteps must be an integer >= 0, got ${warmupSteps}`);
  return {
    warmupSteps,
    totalSteps,
    lrAt: (step: number) => lr * cosineFactor(step, warmupSteps, totalSteps),
  };
}
