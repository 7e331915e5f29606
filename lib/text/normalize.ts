// Answer normalization and structure: turns a LaTeX-ish answer into a canonical string
// (\dfrac → \frac, \frac12 → \frac{1}{2}, no \left/\right, \text{}, spaces, thousands
// separators, degrees, percent, dollars, units, leading `x =`, MC letters) and splits it
// into a small tree (tuples/intervals, sets, unordered lists, unions, matrices, ±) so the
// grader can compare piece by piece.

import { matchBrace } from './extract.js';

/** A normalized answer and what normalization removed that the grader may still need. */
export interface NormalizedAnswer {
  /** The canonical string. */
  text: string;
  /** A percent sign was removed (so `10\%` may also equal `0.1`). */
  percent: boolean;
}

/** A parsed answer: a scalar, or a structure of answers. */
export type AnswerNode =
  | { kind: 'scalar'; text: string }
  | { kind: 'seq'; open: '(' | '['; close: ')' | ']'; items: AnswerNode[] }
  | { kind: 'set'; items: AnswerNode[] /** Came from `a \pm b`. */; pm?: boolean }
  | { kind: 'list'; items: AnswerNode[] }
  | { kind: 'union'; items: AnswerNode[] }
  | { kind: 'matrix'; rows: AnswerNode[][] };

// ---------------------------------------------------------------------------------------
// LaTeX helpers

/** Replaces `\name{content}` (nested braces) for the given command names with fn(content). */
function replaceCommand(s: string, names: readonly string[], fn: (content: string, before: string) => string): string {
  const re = new RegExp(`\\\\(?:${names.join('|')})(?![a-zA-Z])\\s*\\{`, 'g');
  let out = '';
  let pos = 0;
  re.lastIndex = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    const open = m.index + m[0].length - 1;
    const end = matchBrace(s, open);
    if (end < 0) break;
    out += s.slice(pos, m.index);
    out += fn(s.slice(open + 1, end - 1), out);
    pos = end;
    re.lastIndex = end;
  }
  return out + s.slice(pos);
}

/** Reads one macro argument at i: `{…}`, a command `\pi`, or one character. Returns [arg, next]. */
function readArg(s: string, i: number): [string, number] | null {
  let j = i;
  while (j < s.length && s[j] === ' ') j++;
  if (j >= s.length) return null;
  if (s[j] === '{') {
    const end = matchBrace(s, j);
    if (end < 0) return null;
    return [s.slice(j + 1, end - 1), end];
  }
  if (s[j] === '\\') {
    const m = /^\\[a-zA-Z]+/.exec(s.slice(j));
    if (m) return [m[0], j + m[0].length];
    return [s.slice(j, j + 2), j + 2];
  }
  if (s[j] === '}' || s[j] === '^' || s[j] === '_') return null;
  return [s[j] as string, j + 1];
}

/** `\frac12` → `\frac{1}{2}`, `\frac 34`, `\frac9{19}`; `\sqrt2` → `\sqrt{2}`. */
function braceArgs(s: string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const m = /^\\(frac|sqrt|binom)(?![a-zA-Z])/.exec(s.slice(i));
    if (!m) {
      out += s[i];
      i++;
      continue;
    }
    const name = m[1] as string;
    let j = i + m[0].length;
    let opt = '';
    if (name === 'sqrt') {
      const k = s.slice(j).search(/\S/);
      if (k >= 0 && s[j + k] === '[') {
        const close = s.indexOf(']', j + k);
        if (close > 0) {
          opt = s.slice(j + k, close + 1);
          j = close + 1;
        }
      }
    }
    const nargs = name === 'sqrt' ? 1 : 2;
    const args: string[] = [];
    for (let a = 0; a < nargs; a++) {
      const r = readArg(s, j);
      if (!r) break;
      args.push(braceArgs(r[0]));
      j = r[1];
    }
    if (args.length < nargs) {
      out += s.slice(i, j);
      i = j;
      continue;
    }
    out += `\\${name}${opt}${args.map((a) => `{${a}}`).join('')}`;
    i = j;
  }
  return out;
}

const UNIT_WORDS = [
  'square',
  'sq',
  'cubic',
  'units?',
  'cm',
  'mm',
  'km',
  'meters?',
  'metres?',
  'centimeters?',
  'millimeters?',
  'kilometers?',
  'inch(?:es)?',
  'feet',
  'foot',
  'ft',
  'yards?',
  'miles?',
  'mph',
  'seconds?',
  'secs?',
  'minutes?',
  'mins?',
  'hours?',
  'hrs?',
  'days?',
  'weeks?',
  'months?',
  'years?',
  'dollars?',
  'cents?',
  'degrees?',
  'radians?',
  'grams?',
  'kg',
  'kilograms?',
  'pounds?',
  'lbs?',
  'ounces?',
  'oz',
  'liters?',
  'litres?',
  'ml',
  'gallons?',
  'percent',
  'points?',
  'people',
  'persons?',
  'students?',
  'times',
  'ways',
];
const UNIT_RE = new RegExp(`^(.*?[\\d}.])\\s+(?:(?:${UNIT_WORDS.join('|')})\\b\\.?\\s*)+(?:\\^\\{?\\d\\}?)?$`, 'i');
const UNIT_ONLY_RE = new RegExp(`^\\s*(?:(?:${UNIT_WORDS.join('|')})\\b\\.?\\s*)+$`, 'i');

/** Drops a trailing `\text{ cm}^2` / `\mbox{ inches}^2` / `\text{ degrees}` after a quantity. */
function dropTextUnits(s: string): string {
  const re = /\\(?:text|mbox|textrm|mathrm)\s*\{/g;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    const open = m.index + m[0].length - 1;
    const end = matchBrace(s, open);
    if (end < 0) return s;
    const content = s.slice(open + 1, end - 1);
    const before = s.slice(0, m.index).trim();
    const isUnit = (/^\s/.test(content) && /^\s*[a-zA-Z][a-zA-Z\s.]*$/.test(content)) || UNIT_ONLY_RE.test(content);
    if (isUnit && before.length > 0 && /[\d}.)a-zA-Z]$/.test(before)) {
      const rest = s
        .slice(end)
        .replace(/^\s*\^\s*\{?\d\}?/, '')
        .trim();
      if (rest.length === 0) return before;
    }
  }
  return s;
}

function stripDelimiters(s: string): string {
  let t = s.trim();
  for (;;) {
    const m =
      /^\$\$([\s\S]*)\$\$$/.exec(t) ??
      /^\$([\s\S]*)\$$/.exec(t) ??
      /^\\\(([\s\S]*)\\\)$/.exec(t) ??
      /^\\\[([\s\S]*)\\\]$/.exec(t);
    if (!m) return t;
    t = (m[1] as string).trim();
  }
}

function unwrapBoxed(s: string): string {
  const m = /^\\(?:boxed|fbox)\s*\{/.exec(s);
  if (m && matchBrace(s, m[0].length - 1) === s.length) return s.slice(m[0].length, -1).trim();
  return s;
}

// ---------------------------------------------------------------------------------------

/**
 * Normalizes an answer string for comparison and reports whether a percent sign was removed.
 * See {@link normalizeAnswer}.
 */
export function normalizeAnswerInfo(input: string): NormalizedAnswer {
  let s = String(input)
    .replace(/[\u00b2\u00b3\u00b9\u2070\u2074-\u2079]/g, (c) => `^${c.normalize('NFKC')}`)
    .normalize('NFKC')
    .replace(/\u2044/g, '/')
    .replace(/[\u2212\u2013\u2014]/g, '-')
    .replace(/\u00d7/g, '\\times ')
    .replace(/[\u00b7\u22c5]/g, '\\cdot ')
    .replace(/\u03c0/g, '\\pi ')
    .replace(/\u221e/g, '\\infty ')
    .replace(/\u221a/g, '\\sqrt')
    .replace(/\u00b0/g, '^\\circ')
    .replace(/\u2264/g, '\\le ')
    .replace(/\u2265/g, '\\ge ')
    .replace(/\u00b1/g, '\\pm ')
    .replace(/\s+/g, ' ');
  s = stripDelimiters(s);
  s = unwrapBoxed(s);
  s = stripDelimiters(s);
  s = s.replace(/\\(?:displaystyle|textstyle|scriptstyle)(?![a-zA-Z])/g, '');
  s = s.replace(/\\[dt]frac(?![a-zA-Z])/g, '\\frac');
  s = s.replace(/\\(?:left|right)\s*\./g, '');
  s = s.replace(/\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg)(?![a-zA-Z])/g, '');
  s = s.replace(/(?<!\\)\\[,;:! ]/g, ' ').replace(/~/g, ' ');
  s = s.replace(/\{,\}/g, ',');
  // Degrees.
  s = s.replace(/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![a-zA-Z])|\\circ(?![a-zA-Z])|\\degree(?![a-zA-Z])/g, '');
  // Percent and dollars.
  let percent = false;
  s = s.replace(/\\?%|\\text\{\s*percent\s*\}/g, () => {
    percent = true;
    return '';
  });
  s = s.replace(/\\\$/g, '').replace(/\$/g, '');
  s = s.replace(/\\(?:textdollar|dollar)(?![a-zA-Z])/g, '');
  // Units after a quantity, then the remaining text macros.
  s = dropTextUnits(s.trim());
  s = replaceCommand(
    s,
    [
      'text',
      'textbf',
      'textit',
      'textrm',
      'texttt',
      'textsf',
      'mathrm',
      'mathbf',
      'mathit',
      'mathsf',
      'mbox',
      'boldsymbol',
      'operatorname',
    ],
    (content) => content,
  );
  s = s.trim();
  const unit = UNIT_RE.exec(s);
  if (unit) {
    if (/\bpercent\b/i.test(s.slice((unit[1] as string).length))) percent = true;
    s = (unit[1] as string).trim();
  }
  // "x \in [2,5)" → "[2,5)"; "x = 5" → "5" (a single variable, one "=").
  s = s.replace(/^[a-zA-Z]\s*\\in(?![a-zA-Z])\s*/, '');
  const eq = s.split('=');
  if (eq.length === 2 && /^\s*[a-zA-Z](?:_\{?[\w]+\}?)?\s*$/.test(eq[0] as string) && !/[<>]/.test(s)) {
    s = (eq[1] as string).trim();
  }
  s = braceArgs(s);
  s = s
    .replace(/\\leq?(?![a-zA-Z])|\\leqslant(?![a-zA-Z])/g, '\\le')
    .replace(/\\geq?(?![a-zA-Z])|\\geqslant(?![a-zA-Z])/g, '\\ge')
    .replace(/\\neq?(?![a-zA-Z])/g, '\\ne')
    .replace(/\\infin(?![a-zA-Z])/g, '\\infty');
  // Whitespace: keep one space only where it separates a command from a following letter.
  s = s
    .replace(/(\\[a-zA-Z]+)\s+(?=[a-zA-Z])/g, '$1\uE000')
    .replace(/\s+/g, '')
    .replace(/\uE000/g, ' ');
  // Braces around one character in exponents/subscripts: x^{2} → x^2, 204_{5} → 204_5.
  s = s.replace(/([\^_])\{([a-zA-Z0-9])\}/g, '$1$2');
  // Thousands separators (when the whole answer is one number written with them).
  if (/^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/.test(s)) s = s.replace(/,/g, '');
  // Trailing full stop, leading-dot decimals, trailing zeros.
  s = s.replace(/(?<=\S)\.$/, '');
  s = s.replace(/(^|[^\d])\.(\d)/g, (_m, a: string, b: string) => `${a}0.${b}`);
  s = s.replace(/(\d+)\.(\d*?)0+(?!\d)/g, (_m, a: string, b: string) => (b.length ? `${a}.${b}` : a));
  s = s.replace(/(\d)\.(?=$|[,)\]}])/g, '$1');
  // Multiple choice: "(C)" → "C".
  const mc = /^\(([A-Ea-e])\)$/.exec(s);
  if (mc) s = (mc[1] as string).toUpperCase();
  return { text: s, percent };
}

/**
 * Normalizes an answer string for comparison: `\dfrac`/`\tfrac` → `\frac`, `\frac12` →
 * `\frac{1}{2}`, no `\left`/`\right`, `\text{}`/`\mathrm{}` unwrapped, no spaces, no thousands
 * separators, no trailing zeros, no `^\circ`, `\%`, dollar signs or trailing unit words,
 * no leading `x =`, `(C)` → `C`.
 */
export function normalizeAnswer(input: string): string {
  return normalizeAnswerInfo(input).text;
}

// ---------------------------------------------------------------------------------------
// Structure

const OPEN = new Set(['(', '[', '{']);
const CLOSE = new Set([')', ']', '}']);

/** Splits at top-level occurrences of `sep` (brackets of any kind and \{ \} nest). */
export function splitTopLevel(s: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\\') {
      if (s[i + 1] === '{' || s[i + 1] === '}') {
        depth += s[i + 1] === '{' ? 1 : -1;
        i++;
        continue;
      }
      if (depth === 0 && s.startsWith(sep, i) && sep.startsWith('\\')) {
        const after = s[i + sep.length];
        if (after === undefined || !/[a-zA-Z]/.test(after)) {
          parts.push(s.slice(last, i));
          i += sep.length - 1;
          last = i + 1;
          continue;
        }
      }
      const m = /^\\[a-zA-Z]+/.exec(s.slice(i));
      if (m) i += m[0].length - 1;
      continue;
    }
    if (OPEN.has(c)) depth++;
    else if (CLOSE.has(c)) depth--;
    else if (depth === 0 && s.startsWith(sep, i)) {
      parts.push(s.slice(last, i));
      i += sep.length - 1;
      last = i + 1;
    }
  }
  parts.push(s.slice(last));
  return parts;
}

/** Index of the bracket closing the one at 0 (any bracket kind closes any), or -1. */
function closingOf(s: string): number {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\\') {
      if (s[i + 1] === '{') depth++;
      else if (s[i + 1] === '}') {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
      continue;
    }
    if (OPEN.has(c)) depth++;
    else if (CLOSE.has(c)) {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

function scalarOrPm(s: string): AnswerNode {
  // "1 \pm \sqrt{19}" → the unordered pair {1+\sqrt{19}, 1-\sqrt{19}}.
  const pm = splitTopLevel(s, '\\pm');
  if (pm.length === 2) {
    const [a, b] = pm as [string, string];
    return {
      kind: 'set',
      pm: true,
      items: [
        { kind: 'scalar', text: `${a}+${b}`.replace(/^\+/, '') },
        { kind: 'scalar', text: `${a}-${b}` },
      ],
    };
  }
  return { kind: 'scalar', text: s };
}

/** Items of a set or list; an `a \pm b` item counts as its two values. */
function flatItems(nodes: AnswerNode[]): AnswerNode[] {
  return nodes.flatMap((n) => (n.kind === 'set' && n.pm ? n.items : [n]));
}

function itemNode(raw: string): AnswerNode {
  // Items of a list are normalized on their own ("x=1" → "1").
  return parseAnswer(normalizeAnswer(raw), false);
}

/**
 * Parses a normalized answer into an {@link AnswerNode}: `(a,b)`/`[a,b)` sequences (tuples
 * and intervals), `\{…\}` sets, top-level comma lists (unordered), `\cup` unions, matrices,
 * and `a \pm b` (a two-element set).
 */
export function parseAnswer(s: string, normalizeItems = true): AnswerNode {
  const text = s.trim();
  const item = normalizeItems ? itemNode : (x: string) => parseAnswer(x, false);
  const union = splitTopLevel(text, '\\cup');
  if (union.length > 1 && union.every((p) => p.trim().length > 0)) {
    return { kind: 'union', items: union.map((p) => parseAnswer(p.trim(), normalizeItems)) };
  }
  const mat = /^\\begin\{([pbvBV]?matrix)\}([\s\S]*)\\end\{\1\}$/.exec(text);
  if (mat) {
    const rows = (mat[2] as string)
      .split('\\\\')
      .map((r) => r.trim())
      .filter((r) => r.length > 0)
      .map((r) => r.split('&').map((c) => item(c.trim())));
    return { kind: 'matrix', rows };
  }
  if (text.startsWith('\\{') && text.endsWith('\\}') && closingOf(text) === text.length - 1) {
    const inner = text.slice(2, -2);
    const items = inner.trim().length ? splitTopLevel(inner, ',').map((p) => item(p.trim())) : [];
    return { kind: 'set', items: flatItems(items) };
  }
  const first = text[0];
  const last = text[text.length - 1];
  if ((first === '(' || first === '[') && (last === ')' || last === ']') && closingOf(text) === text.length - 1) {
    const inner = text.slice(1, -1);
    const parts = splitTopLevel(inner, ',');
    if (parts.length > 1) {
      return { kind: 'seq', open: first, close: last, items: parts.map((p) => item(p.trim())) };
    }
  }
  const parts = splitTopLevel(text, ',');
  if (parts.length > 1 && parts.every((p) => p.trim().length > 0)) {
    return { kind: 'list', items: flatItems(parts.map((p) => item(p.trim()))) };
  }
  return scalarOrPm(text);
}
