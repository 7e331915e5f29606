// Seeded randomness for datasets: a small deterministic PRNG (mulberry32), Fisher–Yates
// shuffling and train/eval splits that depend only on the rows and the seed.

/** A PRNG returning floats in [0, 1). */
export type Rng = () => number;

/**
 * mulberry32: a tiny, fast 32-bit PRNG; the same seed always gives the same sequence on
 * every platform. Seeds are taken modulo 2^32 (non-integers are truncated).
 */
export function createRng(seed: number): Rng {
  if (!Number.isFinite(seed)) throw new RangeError(`createRng: seed must be a finite number, got ${seed}`);
  let a = Math.trunc(seed) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, n) from a PRNG. */
export function randomInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

/** A shuffled copy of `items` (Fisher–Yates), deterministic for a given seed. */
export function shuffle<T>(items: readonly T[], seed: number): T[] {
  const out = items.slice();
  const rng = createRng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(rng, i + 1);
    const tmp = out[i] as T;
    out[i] = out[j] as T;
    out[j] = tmp;
  }
  return out;
}

/** Options of {@link splitTrainEval}: give `evalSize` (a count) or `evalFraction` (0–1). */
export interface SplitOptions {
  /** Number of rows held out for evaluation. */
  evalSize?: number;
  /** Fraction of rows held out for evaluation (rounded to the nearest count). */
  evalFraction?: number;
  /** Seed of the choice of evaluation rows. Default 0. */
  seed?: number;
}

/**
 * Splits rows into train and eval parts. Which rows go to eval depends only on the number
 * of rows and the seed; both parts keep the original order of the rows.
 */
export function splitTrainEval<T>(items: readonly T[], options: SplitOptions): { train: T[]; eval: T[] } {
  let n: number;
  if (options.evalSize !== undefined) {
    if (!Number.isInteger(options.evalSize) || options.evalSize < 0) {
      throw new RangeError(`splitTrainEval: evalSize must be a non-negative integer, got ${options.evalSize}`);
    }
    n = options.evalSize;
  } else if (options.evalFraction !== undefined) {
    const f = options.evalFraction;
    if (!(f >= 0 && f <= 1)) throw new RangeError(`splitTrainEval: evalFraction must be in [0, 1], got ${f}`);
    n = Math.round(items.length * f);
  } else {
    throw new TypeError('splitTrainEval: give evalSize or evalFraction');
  }
  if (n > items.length) throw new RangeError(`splitTrainEval: evalSize ${n} is more than the ${items.length} rows`);
  const order = shuffle(
    items.map((_, i) => i),
    options.seed ?? 0,
  );
  const isEval = new Uint8Array(items.length);
  for (let k = 0; k < n; k++) isEval[order[k] as number] = 1;
  const train: T[] = [];
  const evalPart: T[] = [];
  items.forEach((item, i) => {
    (isEval[i] ? evalPart : train).push(item);
  });
  return { train, eval: evalPart };
}
