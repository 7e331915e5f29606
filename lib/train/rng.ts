/**
 * rng.ts — the trainer's seeded random numbers, with a state small enough to checkpoint: a
 * mulberry32 generator (the one lib/data uses) whose 32-bit state can be read and restored, and the
 * seeded data order (a fresh shuffle of the rows per epoch, a cursor counting questions consumed).
 */
import { shuffle } from '../data/random.js';

/** mulberry32 with an exposed state. */
export class SeedRng {
  /** The generator's 32-bit state; save it, and restore it to continue the same sequence. */
  state: number;

  constructor(seed: number) {
    this.state = Math.trunc(seed) >>> 0;
  }

  /** The next 32-bit unsigned integer. */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A seed for one generate request: a non-negative safe integer (47 bits). */
  nextSeed(): number {
    return (this.nextUint32() & 0x7fff) * 2 ** 32 + this.nextUint32();
  }
}

/** The order rows are visited in: epoch e is a shuffle of 0..n-1 seeded by (seed, e). */
export class DataOrder {
  /** @internal */
  private readonly _n: number;
  /** @internal */
  private readonly _seed: number;
  /** @internal */
  private _epoch = -1;
  /** @internal */
  private _order: number[] = [];

  constructor(n: number, seed: number) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`DataOrder: need at least one row, got ${n}`);
    this._n = n;
    this._seed = seed;
  }

  /** The row index at `cursor` (questions consumed so far), and the epoch it falls in. */
  at(cursor: number): { index: number; epoch: number } {
    const epoch = Math.floor(cursor / this._n);
    if (epoch !== this._epoch) {
      const s = (Math.trunc(this._seed) + Math.imul(epoch + 1, 0x9e3779b1)) >>> 0;
      this._order = shuffle(
        Array.from({ length: this._n }, (_, i) => i),
        s,
      );
      this._epoch = epoch;
    }
    return { index: this._order[cursor % this._n] as number, epoch };
  }
}
