/**
 * mutate.ts — the small mutation-fuzzing engine of the TypeScript fuzzers in this folder (libFuzzer
 * cannot reach TS parsers): a seeded PRNG, byte mutations, JSON-value mutations, and a driver that
 * runs a target for a time or iteration budget and counts executions and findings.
 *
 * A "finding" is any exception that is not a MotifError (a TypeError, RangeError, an unhandled fs
 * error, ...) or a failed property check thrown by the target as a FuzzFinding.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MotifError } from '../../../lib/native/errors.js';

/** A property violated by an input (e.g. a round trip that does not give back what was written). */
export class FuzzFinding extends Error {}

/** xorshift32: fast, seedable, good enough to pick mutations. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  u32(): number {
    let x = this.s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** An integer in [0, n). */
  below(n: number): number {
    return n <= 0 ? 0 : this.u32() % n;
  }
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)] as T;
  }
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x00, 0x20, 0x22, 0x2c, 0x5b, 0x5d, 0x7b, 0x7d, 0x30, 0x39];

/** One to four byte-level mutations: flip, set interesting byte, insert, delete, duplicate a slice, truncate. */
export function mutateBytes(rng: Rng, input: Uint8Array): Uint8Array {
  let b = Buffer.from(input);
  const n = 1 + rng.below(4);
  for (let k = 0; k < n; k++) {
    const at = rng.below(Math.max(1, b.length));
    switch (rng.below(7)) {
      case 0:
        if (b.length) b[at] ^= 1 << rng.below(8);
        break;
      case 1:
        if (b.length) b[at] = rng.pick(INTERESTING);
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), Buffer.from([rng.below(256)]), b.subarray(at)]);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.below(8))]);
        break;
      case 4: {
        const len = rng.below(16);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
        break;
      }
      case 5:
        b = b.subarray(0, at);
        break;
      default:
        if (b.length >= 8)
          b.writeUInt32LE(rng.pick([0, 1, 0xffffffff, 0x7fffffff, 8, 65536]), Math.min(at, b.length - 4));
    }
  }
  return b;
}

/** A random JSON value of a random type (the replacements of the JSON mutator). */
export function randomJsonValue(rng: Rng, depth = 0): unknown {
  switch (rng.below(depth > 1 ? 7 : 9)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1, 2, 3.5, 1e308, -1e308, 2 ** 53 + 2, 1e-300, 16, 64, 4096]);
    case 3:
      return rng.pick([
        '',
        'q_proj',
        'all-linear',
        'LORA',
        'CAUSAL_LM',
        'none',
        'lora_only',
        '\u0000',
        'x'.repeat(300),
      ]);
    case 4:
      return rng.below(100000) - 50000;
    case 5:
      return Number.NaN.toString();
    case 6:
      return `${rng.u32()}`;
    case 7:
      return Array.from({ length: rng.below(4) }, () => randomJsonValue(rng, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.below(3); i > 0; i--)
        o[rng.pick(['r', 'target_modules', 'x', ''])] = randomJsonValue(rng, depth + 1);
      return o;
    }
  }
}

/** A mutated copy of a parsed JSON document: one to three values replaced, deleted or added somewhere. */
export function mutateJson(rng: Rng, doc: unknown): unknown {
  const copy = structuredClone(doc);
  const containers: Array<Record<string, unknown> | unknown[]> = [];
  const walk = (v: unknown) => {
    if (v && typeof v === 'object') {
      containers.push(v as Record<string, unknown>);
      for (const c of Object.values(v)) walk(c);
    }
  };
  walk(copy);
  if (containers.length === 0 || rng.chance(0.02)) return randomJsonValue(rng);
  const n = 1 + rng.below(3);
  for (let k = 0; k < n; k++) {
    const c = rng.pick(containers);
    const keys = Object.keys(c);
    const op = rng.below(3);
    if (Array.isArray(c)) {
      if (op === 0 && c.length) c[rng.below(c.length)] = randomJsonValue(rng);
      else if (op === 1 && c.length) c.splice(rng.below(c.length), 1);
      else c.push(randomJsonValue(rng));
    } else if (op === 0 && keys.length) c[rng.pick(keys)] = randomJsonValue(rng);
    else if (op === 1 && keys.length) delete c[rng.pick(keys)];
    else c[rng.pick([...keys, 'extra', '__proto__', 'constructor'])] = randomJsonValue(rng);
  }
  return copy;
}

export interface FuzzBudget {
  seconds: number;
  /** Stop after this many executions, whatever the time (0: no limit). */
  maxRuns: number;
  seed: number;
  /** Where a finding's input is written (as <name>-<n>.json). */
  findingsDir: string;
}

/** Parses --seconds N --runs N --seed N --findings DIR. */
export function budgetFromArgv(argv: readonly string[], name: string): FuzzBudget {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    seconds: Number(get('--seconds') ?? 30),
    maxRuns: Number(get('--runs') ?? 0),
    seed: Number(get('--seed') ?? Date.now() % 2 ** 31),
    findingsDir: get('--findings') ?? path.join('build-fuzz', 'js-findings', name),
  };
}

export interface FuzzReport {
  name: string;
  executions: number;
  findings: number;
  /** Inputs the target accepted (the rest were rejected with a MotifError). */
  accepted: number;
  seconds: number;
}

/**
 * Runs `target(rng, iteration)` until the budget is spent. The target returns the input it tried (for
 * the findings file) and whether it was accepted; it may throw anything.
 */
export async function fuzz(
  name: string,
  budget: FuzzBudget,
  target: (rng: Rng) => Promise<{ input: unknown; accepted: boolean; error?: unknown }>,
): Promise<FuzzReport> {
  const rng = new Rng(budget.seed);
  const t0 = performance.now();
  let executions = 0;
  let findings = 0;
  let accepted = 0;
  const seen = new Set<string>();
  while ((performance.now() - t0) / 1000 < budget.seconds && (budget.maxRuns === 0 || executions < budget.maxRuns)) {
    const r = await target(rng);
    executions++;
    if (r.error === undefined) {
      if (r.accepted) accepted++;
      continue;
    }
    if (r.error instanceof MotifError) continue; // a clear refusal, as wanted
    findings++;
    const e = r.error as Error;
    const key = `${e?.constructor?.name}: ${String(e?.message).slice(0, 80)}`;
    if (!seen.has(key)) {
      seen.add(key);
      console.error(`${name}: FINDING ${key}\n${e?.stack ?? ''}`);
    }
    await mkdir(budget.findingsDir, { recursive: true });
    if (findings <= 20)
      await writeFile(
        path.join(budget.findingsDir, `${name}-${findings}.json`),
        JSON.stringify({ error: key, input: r.input }, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v), 2),
      );
  }
  const seconds = (performance.now() - t0) / 1000;
  const report = { name, executions, findings, accepted, seconds };
  console.log(
    `${name}: ${executions} executions in ${seconds.toFixed(1)} s (seed ${budget.seed}), ${accepted} accepted, ${findings} findings`,
  );
  return report;
}
