// Answer grading: `answersMatch(pred, ref)` compares two final answers after normalization —
// exactly, numerically (relative tolerance; fractions vs decimals; leading zeros), piece by
// piece for tuples/intervals/sets/lists/matrices, and symbolically (compute-engine in a
// worker, under a time limit). Also the official MOTIF strict metric (`\boxed{ref}` as a
// substring) and `gradeResponse`, which picks a metric for a whole response.

import { extractAnswer, findBoxed } from './extract.js';
import { type AnswerNode, normalizeAnswerInfo, parseAnswer } from './normalize.js';
import { DEFAULT_SYMBOLIC_TIMEOUT_MS, symbolicEqual } from './symbolic.js';

/** Options of {@link answersMatch}. */
export interface MatchOptions {
  /** Relative tolerance of numeric comparison when a decimal is involved. Default 1e-4. */
  relTol?: number;
  /** Try the symbolic check (compute-engine) when the cheaper ones cannot decide. Default true. */
  symbolic?: boolean;
  /** Time limit of one symbolic check in ms (a check past it counts as not equal). Default 2000. */
  timeoutMs?: number;
}

/** How a response is judged against a reference answer. */
export type GradeMetric =
  /** The official MOTIF metric: the response contains `\boxed{<ref>}` verbatim. */
  | 'strict'
  /** The official AIME evaluation: the response contains the reference string anywhere. */
  | 'contains'
  /** {@link extractAnswer} then {@link answersMatch}. */
  | 'match';

// ---------------------------------------------------------------------------------------
// Numbers

interface Num {
  /** Exact value num/den when the text is an integer, fraction or mixed number. */
  num?: bigint;
  den?: bigint;
  value: number;
  /** Written with a decimal point (or exponent): compared with a tolerance. */
  decimal: boolean;
}

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y) [x, y] = [y, x % y];
  return x;
}

function rational(num: bigint, den: bigint): Num | null {
  if (den === 0n) return null;
  if (den < 0n) {
    num = -num;
    den = -den;
  }
  const g = gcd(num, den) || 1n;
  return { num: num / g, den: den / g, value: Number(num) / Number(den), decimal: false };
}

const INT_RE = /^\d+$/;
const FRAC_RE = /^(\d+)?\\frac\{(\d+)\}\{(\d+)\}$/;
const SLASH_RE = /^(\d+)\/(\d+)$/;
const DEC_RE = /^(\d+\.\d*|\.\d+|\d+)(?:[eE]([+-]?\d+))?$/;
const SCI_RE = /^(\d+\.\d*|\.\d+|\d+)(?:\\times|\\cdot)10\^(?:\{([+-]?\d+)\}|(\d))$/;

/** Parses a normalized scalar as a number, or null. Handles 12, -0.5, 025, 1e-3, \frac{a}{b}, a/b, 1\frac{4}{5}, 1.5\times10^{3}. */
export function parseNumber(s: string): Num | null {
  let t = s.replace(/^\+/, '');
  let sign = 1n;
  if (t.startsWith('-')) {
    sign = -1n;
    t = t.slice(1);
  }
  if (INT_RE.test(t)) return rational(sign * BigInt(t), 1n);
  const frac = FRAC_RE.exec(t);
  if (frac) {
    const whole = frac[1] ? BigInt(frac[1]) : 0n;
    const den = BigInt(frac[3] as string);
    return rational(sign * (whole * den + BigInt(frac[2] as string)), den);
  }
  const slash = SLASH_RE.exec(t);
  if (slash) return rational(sign * BigInt(slash[1] as string), BigInt(slash[2] as string));
  const sgn = Number(sign);
  const dec = DEC_RE.exec(t);
  if (dec) return { value: sgn * Number(dec[1]) * 10 ** Number(dec[2] ?? 0), decimal: true };
  const sci = SCI_RE.exec(t);
  if (sci) return { value: sgn * Number(sci[1]) * 10 ** Number(sci[2] ?? sci[3]), decimal: true };
  return null;
}

function numbersEqual(x: Num, y: Num, relTol: number): boolean {
  if (!x.decimal && !y.decimal && x.num !== undefined && y.num !== undefined) {
    return x.num === y.num && x.den === y.den;
  }
  const d = Math.abs(x.value - y.value);
  return d <= relTol * Math.max(Math.abs(x.value), Math.abs(y.value)) || d === 0;
}

// ---------------------------------------------------------------------------------------
// Scalars and structures

interface Ctx {
  relTol: number;
  symbolic: boolean;
  timeoutMs: number;
  percent: boolean;
}

const FUNCTION_WORDS = new Set([
  'sin',
  'cos',
  'tan',
  'cot',
  'sec',
  'csc',
  'log',
  'ln',
  'exp',
  'sqrt',
  'frac',
  'pi',
  'infty',
  'cdot',
  'times',
  'arcsin',
  'arccos',
  'arctan',
  'sinh',
  'cosh',
  'tanh',
  'le',
  'ge',
  'ne',
  'pm',
  'mp',
  'circ',
  'binom',
  'overline',
]);

/** True when the scalar reads like words rather than mathematics (not worth a symbolic check). */
function isWordy(s: string): boolean {
  const bare = s.replace(/\\[a-zA-Z]+/g, ' ');
  return /[a-zA-Z]{3,}/.test(bare) || /^[a-zA-Z]{3,}$/.test(s);
}

function isPlainWords(s: string): boolean {
  return /^[a-zA-Z][a-zA-Z '-]*$/.test(s) && !FUNCTION_WORDS.has(s.toLowerCase());
}

function scalarEqual(a: string, b: string, ctx: Ctx): boolean {
  if (a === b) return true;
  if (a.length === 0 || b.length === 0) return false;
  if (isPlainWords(a) && isPlainWords(b)) return a.toLowerCase() === b.toLowerCase();
  const x = parseNumber(a);
  const y = parseNumber(b);
  if (x && y) {
    if (numbersEqual(x, y, ctx.relTol)) return true;
    if (ctx.percent) {
      const dec = (n: Num, f: number): Num => ({ value: n.value * f, decimal: true });
      if (numbersEqual(dec(x, 0.01), y, ctx.relTol) || numbersEqual(x, dec(y, 0.01), ctx.relTol)) return true;
    }
    return false;
  }
  if (!ctx.symbolic || isWordy(a) || isWordy(b)) return false;
  return symbolicEqual(a, b, { timeoutMs: ctx.timeoutMs, relTol: ctx.relTol }) === true;
}

function unorderedEqual(xs: AnswerNode[], ys: AnswerNode[], ctx: Ctx): boolean {
  if (xs.length !== ys.length) return false;
  const used = new Array<boolean>(ys.length).fill(false);
  for (const x of xs) {
    let found = false;
    for (let j = 0; j < ys.length; j++) {
      if (!used[j] && nodesEqual(x, ys[j] as AnswerNode, ctx)) {
        used[j] = true;
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

function orderedEqual(xs: AnswerNode[], ys: AnswerNode[], ctx: Ctx): boolean {
  return xs.length === ys.length && xs.every((x, i) => nodesEqual(x, ys[i] as AnswerNode, ctx));
}

/** A column vector or a row vector as a list of items, else null. */
function vectorItems(n: AnswerNode): AnswerNode[] | null {
  if (n.kind !== 'matrix') return null;
  if (n.rows.every((r) => r.length === 1)) return n.rows.map((r) => r[0] as AnswerNode);
  if (n.rows.length === 1) return n.rows[0] as AnswerNode[];
  return null;
}

function nodesEqual(x: AnswerNode, y: AnswerNode, ctx: Ctx): boolean {
  if (x.kind === 'scalar' && y.kind === 'scalar') return scalarEqual(x.text, y.text, ctx);
  if (x.kind === 'seq' && y.kind === 'seq') {
    return x.open === y.open && x.close === y.close && orderedEqual(x.items, y.items, ctx);
  }
  if ((x.kind === 'set' || x.kind === 'list') && (y.kind === 'set' || y.kind === 'list')) {
    return unorderedEqual(x.items, y.items, ctx);
  }
  if (x.kind === 'union' && y.kind === 'union') return unorderedEqual(x.items, y.items, ctx);
  if (x.kind === 'matrix' && y.kind === 'matrix') {
    return x.rows.length === y.rows.length && x.rows.every((r, i) => orderedEqual(r, y.rows[i] as AnswerNode[], ctx));
  }
  // A vector written as a matrix vs as a tuple "(a, b)" / list "a, b".
  const vx = vectorItems(x);
  const vy = vectorItems(y);
  if (vx && ((y.kind === 'seq' && y.open === '(' && y.close === ')') || y.kind === 'list'))
    return orderedEqual(vx, y.items, ctx);
  if (vy && ((x.kind === 'seq' && x.open === '(' && x.close === ')') || x.kind === 'list'))
    return orderedEqual(x.items, vy, ctx);
  // A tuple "(a, b)" written as the list "a, b".
  if (x.kind === 'list' && y.kind === 'seq' && y.open === '(' && y.close === ')')
    return orderedEqual(x.items, y.items, ctx);
  if (y.kind === 'list' && x.kind === 'seq' && x.open === '(' && x.close === ')')
    return orderedEqual(x.items, y.items, ctx);
  return false;
}

// ---------------------------------------------------------------------------------------
// Public API

/**
 * True when a predicted final answer equals the reference answer.
 *
 * Both are normalized (see {@link normalizeAnswer}) and compared exactly; then numerically
 * (integers and fractions exactly, decimals within `relTol`; `025` = `25`; `10\%` may equal
 * `0.1`); tuples and intervals element by element in order, sets and comma lists in any
 * order, unions, matrices, `a \pm b`; and finally symbolically with compute-engine
 * (expressions, `\sqrt`, `\pi`, complex numbers, equations up to a factor), under a time
 * limit — a check that runs past it counts as not equal. Pass extracted answers (see
 * {@link extractAnswer}); for whole responses use {@link gradeResponse}.
 */
export function answersMatch(pred: string | null | undefined, ref: string, options: MatchOptions = {}): boolean {
  if (pred === null || pred === undefined) return false;
  const p = normalizeAnswerInfo(String(pred));
  const r = normalizeAnswerInfo(String(ref));
  if (p.text.length === 0 || r.text.length === 0) return false;
  if (p.text === r.text) return true;
  const ctx: Ctx = {
    relTol: options.relTol ?? 1e-4,
    symbolic: options.symbolic ?? true,
    timeoutMs: options.timeoutMs ?? DEFAULT_SYMBOLIC_TIMEOUT_MS,
    percent: p.percent || r.percent,
  };
  return nodesEqual(parseAnswer(p.text), parseAnswer(r.text), ctx);
}

/**
 * The official MOTIF metric: true when `text` contains `\boxed{<reference>}` verbatim
 * (no normalization at all), as the paper's evaluation code checks.
 */
export function strictMatch(text: string, reference: string): boolean {
  return text.includes(`\\boxed{${reference}}`);
}

/** Options of {@link gradeResponse}. */
export interface GradeOptions extends MatchOptions {
  /** Default 'match'. */
  metric?: GradeMetric;
}

/**
 * Judges a whole response against a reference answer with the chosen metric:
 * `'strict'` (`\boxed{ref}` verbatim), `'contains'` (the reference string anywhere) or
 * `'match'` ({@link extractAnswer} + {@link answersMatch}).
 */
export function gradeResponse(response: string, reference: string, options: GradeOptions = {}): boolean {
  const metric = options.metric ?? 'match';
  if (metric === 'strict') return strictMatch(response, reference);
  if (metric === 'contains') return response.includes(reference);
  if (metric !== 'match') throw new RangeError(`gradeResponse: unknown metric '${String(metric)}'`);
  return answersMatch(extractAnswer(response), reference, options);
}

/**
 * True when one of the `\boxed{…}` in `text` matches the reference: verbatim for
 * `'strict'`, by {@link answersMatch} for `'match'`; with `lastOnly`, only the last box counts.
 */
export function boxedMatches(
  text: string,
  reference: string,
  metric: 'strict' | 'match',
  options: MatchOptions & { lastOnly?: boolean } = {},
): boolean {
  if (metric === 'strict') {
    if (!options.lastOnly) return strictMatch(text, reference);
    const boxes = findBoxed(text);
    const last = boxes[boxes.length - 1];
    return last !== undefined && last.content === reference;
  }
  const boxes = findBoxed(text);
  const pick = options.lastOnly ? boxes.slice(-1) : boxes;
  return pick.some((b) => answersMatch(b.content, reference, options));
}
