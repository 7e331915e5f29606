/**
 * task.ts — the built-in demo task: a chain of labelled digits whose running sum modulo 10 must be
 * worked out step by step, with more steps than one round's token budget holds, so the model has to
 * hand its partial result (the next label and the running value) to the next round in <answer>, and
 * box the result in the final round.
 *
 *   question  a3b7c1d9e4f2g8h5i0j6k2l9         (label, digit) pairs
 *   round 1   <reasoning>\na0 a3:3 b7:0 c1:1 d9:0\n</reasoning>\n<answer>\ne0\n</answer>\n
 *   round 2   (user message carries progress "e0")  ... e4:4 f2:6 g8:4 h5:9 ... <answer>\ni9\n</answer>
 *   round 3   (final)                                ... <answer>\n\boxed{6}\n</answer>\n
 *
 * Each step is `<label><digit>:<new value>`; the reasoning opens by restating the state it starts
 * from, so every value is computed from the one five characters before it and every digit is found
 * by its label (what a two-layer transformer learns easily). The task goes through the same round
 * protocol (lib/motif/protocol.ts), tags and rewards as the real datasets; only the prompt texts are
 * its own, supplied through the template mechanism (see {@link demoTemplates}).
 */

import type { DatasetRow } from '../data/datasets.js';
import { createRng, randomInt } from '../data/random.js';
import { type ProtocolTemplates, resolveTemplates } from '../motif/protocol.js';
import { MotifError } from '../native/errors.js';

/** Settings of the demo task. */
export interface DemoTaskOptions {
  /** Digits in a chain (1–26: one letter label each). Default 12. */
  length?: number;
  /** Rounds R of the protocol. Default 3. */
  rounds?: number;
  /** Digits are drawn from 0..maxDigit (1–9). Default 9. */
  maxDigit?: number;
  /** Steps one round can hold; the per-round token budget is sized for this many. Default ceil(length / rounds). */
  stepsPerRound?: number;
}

/** {@link DemoTaskOptions} with every default filled in and checked. */
export interface DemoTask {
  length: number;
  rounds: number;
  maxDigit: number;
  stepsPerRound: number;
}

/** The reduction modulus of the running sum. */
export const DEMO_MODULUS = 10;

const LABELS = 'abcdefghijklmnopqrstuvwxyz';

function bad(field: string, expected: string, got: unknown): MotifError {
  return new MotifError('ERR_MOTIF_INVALID_ARGUMENT', `demo task: ${field}: expected ${expected}, got ${String(got)}`);
}

function intIn(field: string, v: unknown, lo: number, hi: number): number {
  if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi)
    throw bad(field, `an integer in ${lo}..${hi}`, v);
  return v as number;
}

/** Fills defaults into `options` and checks them (a MotifError names the bad setting). */
export function resolveDemoTask(options: DemoTaskOptions = {}): DemoTask {
  const length = intIn('length', options.length ?? 12, 1, LABELS.length);
  const rounds = intIn('rounds', options.rounds ?? 3, 1, 10);
  const maxDigit = intIn('maxDigit', options.maxDigit ?? 9, 1, 9);
  const stepsPerRound = intIn('stepsPerRound', options.stepsPerRound ?? Math.ceil(length / rounds), 1, length);
  if (stepsPerRound * rounds < length)
    throw bad(
      'stepsPerRound',
      `at least ceil(length / rounds) = ${Math.ceil(length / rounds)} so the chain fits`,
      stepsPerRound,
    );
  return { length, rounds, maxDigit, stepsPerRound };
}

/** The label of step i (0-based): a, b, c, ... */
export function demoLabel(i: number): string {
  const l = LABELS[i];
  if (l === undefined) throw new RangeError(`demo label index ${i} is out of range 0..${LABELS.length - 1}`);
  return l;
}

/** The digits of a question (`a3b7c1` → [3, 7, 1]); a MotifError when it is not a demo question. */
export function parseDemoQuestion(question: string): number[] {
  if (typeof question !== 'string' || question.length === 0 || question.length % 2 !== 0)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      `not a demo question (label/digit pairs): ${JSON.stringify(question)}`,
    );
  const digits: number[] = [];
  for (let i = 0; i < question.length; i += 2) {
    const label = question[i];
    const digit = question.charCodeAt(i + 1) - 48;
    if (label !== LABELS[i / 2] || digit < 0 || digit > 9)
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `not a demo question: expected label '${LABELS[i / 2]}' and a digit at character ${i}, got ${JSON.stringify(question.slice(i, i + 2))}`,
      );
    digits.push(digit);
  }
  return digits;
}

/** The reference answer: the sum of the digits modulo 10, as a string. */
export function solveDemo(question: string): string {
  return String(parseDemoQuestion(question).reduce((s, d) => s + d, 0) % DEMO_MODULUS);
}

/** One generated problem: `count` rows {id, question, answer} from `seed`, reproducible on every platform. */
export function generateDemoRows(count: number, seed: number, options: DemoTaskOptions = {}): DatasetRow[] {
  const task = resolveDemoTask(options);
  if (!Number.isInteger(count) || count < 0) throw bad('count', 'a non-negative integer', count);
  const rng = createRng(seed);
  const rows: DatasetRow[] = [];
  for (let n = 0; n < count; n++) {
    let question = '';
    let sum = 0;
    for (let i = 0; i < task.length; i++) {
      const d = randomInt(rng, task.maxDigit + 1);
      question += `${demoLabel(i)}${d}`;
      sum += d;
    }
    rows.push({
      id: `demo-${seed}-${n}`,
      question,
      answer: String(sum % DEMO_MODULUS),
      source: { file: '<demo task>', line: n + 1 },
      meta: { seed },
    });
  }
  return rows;
}

/** Where a round starts: the index of the next digit and the running value. */
export interface DemoState {
  next: number;
  value: number;
}

/** The progress text of a state: the next label and the running value (`e0`). */
export function formatDemoProgress(state: DemoState): string {
  return `${demoLabel(state.next)}${state.value}`;
}

/**
 * Reads a progress text back into a state; null when it is not one (the model wrote something
 * else). Labels past the chain are allowed (a finished chain hands on the label after the last).
 */
export function parseDemoProgress(progress: string): DemoState | null {
  const m = /^([a-z])([0-9])$/.exec(progress.trim());
  if (!m) return null;
  return { next: LABELS.indexOf(m[1] as string), value: Number(m[2]) };
}

/** What one round of a correct worker does, and what it writes. */
export interface DemoRound {
  /** The response text (strict tag layout, ending in a newline). */
  response: string;
  /** The state after the round (what a carried progress holds). */
  after: DemoState;
}

/**
 * The response of one round that starts from `state`: up to stepsPerRound steps of the chain, then
 * the progress (non-final rounds) or the boxed value (the final round). With `dropProgress` a
 * non-final round hands on the start state `a0` instead of its result — the failure the demo
 * model is taught on purpose, which MOTIF's future-accuracy reward learns to avoid.
 */
export function demoRoundResponse(
  question: string,
  state: DemoState,
  final: boolean,
  task: DemoTask,
  dropProgress = false,
): DemoRound {
  const digits = parseDemoQuestion(question);
  let { next, value } = state;
  let line = formatDemoProgress(state);
  for (let s = 0; s < task.stepsPerRound && next < digits.length; s++) {
    value = (value + (digits[next] as number)) % DEMO_MODULUS;
    line += ` ${demoLabel(next)}${digits[next]}:${value}`;
    next++;
  }
  const after = { next, value };
  const answer = final ? `\\boxed{${value}}` : formatDemoProgress(dropProgress ? { next: 0, value: 0 } : after);
  return { response: `<reasoning>\n${line}\n</reasoning>\n<answer>\n${answer}\n</answer>\n`, after };
}

/**
 * The demo's prompt texts (short, so prompts stay a few dozen characters), checked by the
 * protocol's own resolveTemplates. Placeholders as in lib/motif/protocol.ts.
 */
export function demoTemplates(): ProtocolTemplates {
  return resolveTemplates(
    {
      system: 'Sum the digits mod 10 in {rounds} rounds.',
      user: '{question}{progressPart}{finalPart}',
      progress: ' Progress: {progress}',
      finalRound: ' Final round.',
      singleRoundSystem: 'Sum the digits mod 10.',
      baseSystem: 'Sum the digits mod 10. Box the sum.',
    },
    'demo templates',
  );
}
