// Reward functions: the RewardFn interface (async, batched, named, weighted), MOTIF's
// outcome reward over k multi-round trajectories, the official format rewards (xmlcount,
// soft format, strict format — same patterns and scores as the MOTIF / TRL GRPO demo code),
// single-round correctness for plain GRPO, and loading user reward modules.

import path from 'node:path';
import { pathToFileURL } from 'node:url';

import type { DatasetRow } from '../data/datasets.js';
import { boxedMatches, gradeResponse, type MatchOptions, strictMatch } from '../text/answers.js';
import { extractXmlAnswer } from '../text/extract.js';

/** What a reward function sees about one response. */
export interface RewardInput {
  /** The question (dataset text, without the prompt template). */
  question: string;
  /** The reference final answer. */
  reference: string;
  /** The response being rewarded: the first round for MOTIF, the only round for GRPO. */
  response: string;
  /**
   * MOTIF: the k trajectories continuing `response`; each lists the texts of rounds 2..R in
   * order (the last entry is the final round). Absent or empty: `response` is the final round.
   */
  trajectories?: readonly (readonly string[])[];
  /** The dataset row, for rewards that need more than the answer. */
  row?: DatasetRow;
}

/** A named, weighted, batched reward. `score` returns one raw score per input. */
export interface RewardFn {
  /** Unique name; metrics report each component under it. */
  readonly name: string;
  /** Multiplies the raw score in the total. */
  readonly weight: number;
  /** Scores a batch; may be async. */
  score(batch: readonly RewardInput[]): Promise<number[]> | number[];
}

/** Scores of a batch: the weighted total and each component's raw scores. */
export interface RewardScores {
  /** Σ weight × score, per input. */
  total: number[];
  /** Raw (unweighted) scores per reward name. */
  components: Record<string, number[]>;
}

/** Which answer check the correctness rewards use. */
export type RewardMetric = 'strict' | 'match';

/** Options shared by the built-in rewards. */
export interface RewardOptions {
  /** Name of the component (defaults differ per reward). */
  name?: string;
  /** Weight in the total. Default 1. */
  weight?: number;
}

/** Options of the correctness rewards. */
export interface CorrectnessOptions extends RewardOptions {
  /** `'strict'` (default): `\boxed{ref}` verbatim, as the official code; `'match'`: {@link answersMatch}. */
  metric?: RewardMetric;
  /** Options of {@link answersMatch} for `'match'`. */
  match?: MatchOptions;
}

function weightOf(o: RewardOptions): number {
  const w = o.weight ?? 1;
  if (!Number.isFinite(w)) throw new RangeError(`reward weight must be a finite number, got ${w}`);
  return w;
}

// ---------------------------------------------------------------------------------------
// MOTIF outcome

/**
 * The outcome score of one final-round response: 2 when the reference is boxed in its
 * `<answer>` section (the official `extract_xml_answer`: last `<answer>`, closing tag
 * optional, the whole text when there is no tag), 1 when it is boxed only elsewhere in the
 * response, 0 otherwise. `'strict'`: `\boxed{ref}` verbatim anywhere in the part, as the
 * official code. `'match'`: the last box of the answer section must match for 2 (so listing
 * several candidates does not pay), any box of the response for 1.
 */
export function outcomeScore(
  finalResponse: string,
  reference: string,
  metric: RewardMetric = 'strict',
  match: MatchOptions = {},
): number {
  const answer = extractXmlAnswer(finalResponse);
  if (metric === 'strict') {
    if (strictMatch(answer, reference)) return 2;
    return strictMatch(finalResponse, reference) ? 1 : 0;
  }
  if (boxedMatches(answer, reference, 'match', { ...match, lastOnly: true })) return 2;
  return boxedMatches(finalResponse, reference, 'match', match) ? 1 : 0;
}

/**
 * MOTIF's outcome reward: for each first-round response, the mean {@link outcomeScore} of the
 * final rounds of its k trajectories (of the response itself when it has none). Range 0–2.
 */
export function motifOutcomeReward(options: CorrectnessOptions = {}): RewardFn {
  const metric = options.metric ?? 'strict';
  const match = options.match ?? {};
  return {
    name: options.name ?? 'outcome',
    weight: weightOf(options),
    score: (batch) =>
      batch.map((x) => {
        const finals = x.trajectories?.length
          ? x.trajectories.map((t) => (t.length ? (t[t.length - 1] as string) : x.response))
          : [x.response];
        const sum = finals.reduce((s, f) => s + outcomeScore(f, x.reference, metric, match), 0);
        return sum / finals.length;
      }),
  };
}

/** Single-round correctness for plain GRPO: `value` (default 2) when the response is right, else 0. */
export function correctnessReward(options: CorrectnessOptions & { value?: number } = {}): RewardFn {
  const metric = options.metric ?? 'strict';
  const value = options.value ?? 2;
  return {
    name: options.name ?? 'correctness',
    weight: weightOf(options),
    score: (batch) =>
      batch.map((x) =>
        (
          metric === 'strict'
            ? strictMatch(x.response, x.reference)
            : gradeResponse(x.response, x.reference, { ...options.match, metric: 'match' })
        )
          ? value
          : 0,
      ),
  };
}

// ---------------------------------------------------------------------------------------
// Format rewards (official definitions; Python's `.` never matches "\n", so neither does ours)

function count(text: string, sub: string): number {
  return text.split(sub).length - 1;
}

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function after(text: string, sep: string): string {
  const k = text.lastIndexOf(sep);
  return k < 0 ? text : text.slice(k + sep.length);
}

/**
 * The official `count_xml`: 0.125 for each of `<reasoning>\n`, `\n</reasoning>\n`,
 * `\n<answer>\n`, `\n</answer>` found exactly once, minus 0.001 per character after the
 * answer (both penalties exactly as the original). At most 0.5; can be negative.
 */
export function countXml(text: string): number {
  let c = 0;
  if (count(text, '<reasoning>\n') === 1) c += 0.125;
  if (count(text, '\n</reasoning>\n') === 1) c += 0.125;
  if (count(text, '\n<answer>\n') === 1) {
    c += 0.125;
    c -= codePoints(after(text, '\n</answer>\n')) * 0.001;
  }
  if (count(text, '\n</answer>') === 1) {
    c += 0.125;
    c -= (codePoints(after(text, '\n</answer>')) - 1) * 0.001;
  }
  return c;
}

// re.match(r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>", text)
const SOFT_RE = /^<reasoning>[^\n]*?<\/reasoning>\s*<answer>[^\n]*?<\/answer>/;
const SOFT_RE_DOTALL = /^<reasoning>[\s\S]*?<\/reasoning>\s*<answer>[\s\S]*?<\/answer>/;
// re.match(r"^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n$", text): Python's "$"
// also matches before one final "\n".
const STRICT_RE = /^<reasoning>\n[^\n]*?\n<\/reasoning>\n<answer>\n[^\n]*?\n<\/answer>\n\n?$/;
const STRICT_RE_DOTALL = /^<reasoning>\n[\s\S]*?\n<\/reasoning>\n<answer>\n[\s\S]*?\n<\/answer>\n\n?$/;

/** Options of the regex format rewards. */
export interface FormatOptions extends RewardOptions {
  /** Let the sections span several lines (the official patterns do not: Python `.` stops at "\n"). Default false. */
  dotAll?: boolean;
  /** Score when the format holds. Default 0.5. */
  value?: number;
}

/** True when a response passes the official soft format check. */
export function softFormatOk(text: string, dotAll = false): boolean {
  return (dotAll ? SOFT_RE_DOTALL : SOFT_RE).test(text);
}

/** True when a response passes the official strict format check. */
export function strictFormatOk(text: string, dotAll = false): boolean {
  return (dotAll ? STRICT_RE_DOTALL : STRICT_RE).test(text);
}

/** The official xmlcount reward (see {@link countXml}), on the rewarded response. */
export function xmlCountReward(options: RewardOptions = {}): RewardFn {
  return {
    name: options.name ?? 'xmlcount',
    weight: weightOf(options),
    score: (b) => b.map((x) => countXml(x.response)),
  };
}

/** The official soft format reward: 0.5 when `<reasoning>…</reasoning>` then `<answer>…</answer>` open the response. */
export function softFormatReward(options: FormatOptions = {}): RewardFn {
  const v = options.value ?? 0.5;
  return {
    name: options.name ?? 'soft_format',
    weight: weightOf(options),
    score: (b) => b.map((x) => (softFormatOk(x.response, options.dotAll) ? v : 0)),
  };
}

/** The official strict format reward: 0.5 when the response is exactly the tag layout, line by line. */
export function strictFormatReward(options: FormatOptions = {}): RewardFn {
  const v = options.value ?? 0.5;
  return {
    name: options.name ?? 'strict_format',
    weight: weightOf(options),
    score: (b) => b.map((x) => (strictFormatOk(x.response, options.dotAll) ? v : 0)),
  };
}

/** The official MOTIF reward set: outcome (over trajectories), xmlcount, soft format, strict format. */
export function motifRewards(options: { metric?: RewardMetric; match?: MatchOptions } = {}): RewardFn[] {
  return [motifOutcomeReward(options), xmlCountReward(), softFormatReward(), strictFormatReward()];
}

/** The official GRPO-baseline reward set: xmlcount, soft format, strict format, correctness. */
export function grpoRewards(options: { metric?: RewardMetric; match?: MatchOptions } = {}): RewardFn[] {
  return [xmlCountReward(), softFormatReward(), strictFormatReward(), correctnessReward(options)];
}

// ---------------------------------------------------------------------------------------

/**
 * Runs reward functions on a batch (concurrently) and sums them with their weights. Throws
 * naming the reward when one returns the wrong number of scores or a non-finite score.
 */
export async function computeRewards(
  rewards: readonly RewardFn[],
  batch: readonly RewardInput[],
): Promise<RewardScores> {
  const names = new Set<string>();
  for (const r of rewards) {
    if (names.has(r.name)) throw new Error(`two rewards are named "${r.name}"`);
    names.add(r.name);
  }
  const results = await Promise.all(
    rewards.map(async (r) => {
      let scores: unknown;
      try {
        scores = await r.score(batch);
      } catch (err) {
        throw new Error(`reward "${r.name}" failed: ${(err as Error).message}`);
      }
      if (!Array.isArray(scores) && !ArrayBuffer.isView(scores))
        throw new TypeError(`reward "${r.name}" must return an array of numbers`);
      const arr = Array.from(scores as ArrayLike<number>);
      if (arr.length !== batch.length)
        throw new RangeError(`reward "${r.name}" returned ${arr.length} scores for ${batch.length} inputs`);
      arr.forEach((v, i) => {
        if (typeof v !== 'number' || !Number.isFinite(v))
          throw new RangeError(`reward "${r.name}" returned a non-finite score (${String(v)}) at index ${i}`);
      });
      return arr;
    }),
  );
  const total = new Array<number>(batch.length).fill(0);
  const components: Record<string, number[]> = {};
  rewards.forEach((r, k) => {
    const s = results[k] as number[];
    components[r.name] = s;
    for (let i = 0; i < s.length; i++) total[i] = (total[i] as number) + r.weight * (s[i] as number);
  });
  return { total, components };
}

function asReward(value: unknown, exportName: string, file: string): RewardFn {
  if (typeof value === 'function') {
    const fn = value as ((batch: readonly RewardInput[]) => number[] | Promise<number[]>) & {
      weight?: unknown;
      rewardName?: unknown;
    };
    const weight = fn.weight ?? 1;
    if (typeof weight !== 'number' || !Number.isFinite(weight))
      throw new TypeError(`${file}: export "${exportName}" has a non-numeric weight`);
    const name = typeof fn.rewardName === 'string' && fn.rewardName ? fn.rewardName : fn.name || exportName;
    return { name, weight, score: (batch) => fn(batch) };
  }
  if (value && typeof value === 'object' && typeof (value as { score?: unknown }).score === 'function') {
    const r = value as { name?: unknown; weight?: unknown; score: RewardFn['score'] };
    const weight = r.weight ?? 1;
    if (typeof weight !== 'number' || !Number.isFinite(weight))
      throw new TypeError(`${file}: reward "${exportName}" has a non-numeric weight`);
    const name = typeof r.name === 'string' && r.name ? r.name : exportName;
    return { name, weight, score: (batch) => r.score.call(r, batch) };
  }
  throw new TypeError(
    `${file}: export "${exportName}" is not a reward (a function of the batch, or an object with score())`,
  );
}

/**
 * Loads reward functions from a user's JS module (or TS, when run under a TypeScript loader).
 * The default export — or else every named export — may be: a function `(batch) => scores`
 * (named by its `rewardName` property, else its function name; weighted by its `weight`
 * property, default 1), a {@link RewardFn}-like object
 * `{ name?, weight?, score(batch) }`, or an array of these. Errors name the file.
 */
export async function loadRewardModule(file: string): Promise<RewardFn[]> {
  const abs = path.resolve(file);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${file}: cannot load reward module: ${(err as Error).message}`);
  }
  const entries: [string, unknown][] = mod.default !== undefined ? [['default', mod.default]] : Object.entries(mod);
  const out: RewardFn[] = [];
  for (const [name, value] of entries) {
    if (Array.isArray(value)) {
      value.forEach((v, i) => {
        out.push(asReward(v, `${name}[${i}]`, file));
      });
    } else out.push(asReward(value, name, file));
  }
  if (out.length === 0) throw new Error(`${file}: the module exports no reward`);
  const seen = new Set<string>();
  for (const r of out) {
    if (seen.has(r.name)) throw new Error(`${file}: two rewards are named "${r.name}"`);
    seen.add(r.name);
  }
  return out;
}
