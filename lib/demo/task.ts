/**
 * task.ts — the built-in demo task: a chain of labelled digits whose running sum modulo 10 must be
 * worked out step by step, with more steps than one round's token budget holds, so the model has to
 * hand its partial result (the next label and the running value) to the next round in <answer>, and
 * box the result in the final round.
 *
 *   question  a3, b7, c1, d9, e4, f2, g8, h5, i0, j6, k2, l9
 *   round 1   <reasoning>\na0 3:3 7:0 1:1 9:0\n</reasoning>\n<answer>\ne0\n</answer>\n
 *   round 2   (user message ends "Progress is: e0")   e0 4:4 2:6 8:4 5:9 ... <answer>\ni9\n</answer>
 *   round 3   (final)                                  i9 0:9 6:5 2:7 9:6 ... <answer>\n\boxed{6}\n</answer>
 *
 * Each step is `<digit>:<new value>`; the reasoning opens by restating the state it starts from.
 * The layout is chosen so that a tiny transformer needs only fixed-distance lookups: a step is four
 * characters like a question pair ("a3, "), and each later round's prompt is exactly four characters
 * per step longer (the progress and final-round texts of {@link demoTemplates}), so the digit a step
 * needs always sits the same distance back, and each value comes from the digit just before it and
 * the value four characters earlier. (An earlier layout that found digits by their label — an
 * induction lookup — stayed at chance after 500 SFT steps.) The task goes through the same round
 * protocol (lib/motif/protocol.ts), tags and rewards as the real datasets; only the prompt texts are
 * its own, supplied through the template mechanism.
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

/** The separator between the question's pairs. */
const SEP = ', ';

/** The question text of a chain of digits: `a3, b7, c1`. */
export function formatDemoQuestion(digits: readonly number[]): string {
  return digits.map((d, i) => `${demoLabel(i)}${d}`).join(SEP);
}

/** The digits of a question (`a3, b7, c1` → [3, 7, 1]); a MotifError when it is not a demo question. */
export function parseDemoQuestion(question: string): number[] {
  if (typeof question !== 'string' || question.length === 0)
    throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', `not a demo question: ${JSON.stringify(question)}`);
  return question.split(SEP).map((pair, i) => {
    const digit = pair.charCodeAt(1) - 48;
    if (pair.length !== 2 || pair[0] !== LABELS[i] || !(digit >= 0 && digit <= 9))
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `not a demo question: pair ${i + 1} should be '${LABELS[i] ?? '?'}' and a digit, got ${JSON.stringify(pair)} (questions look like "a3, b7, c1")`,
      );
    return digit;
  });
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
    const digits: number[] = [];
    for (let i = 0; i < task.length; i++) digits.push(randomInt(rng, task.maxDigit + 1));
    const question = formatDemoQuestion(digits);
    const sum = digits.reduce((a, b) => a + b, 0);
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
 * non-final round loses its running value (hands on `e0` instead of `e7`) — the failure the demo
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
    line += ` ${digits[next]}:${value}`;
    next++;
  }
  const after = { next, value };
  const answer = final ? `\\boxed{${value}}` : formatDemoProgress(dropProgress ? { next, value: 0 } : after);
  return { response: `<reasoning>\n${line}\n</reasoning>\n<answer>\n${answer}\n</answer>\n`, after };
}

/**
 * The demo's prompt texts, checked by the protocol's own resolveTemplates (placeholders as in
 * lib/motif/protocol.ts). The final-round text comes before the progress and each is 16
 * characters long (with a two-character progress), so round r's prompt is 16·(r-1) characters
 * longer than round 1's: four per step of a four-step round, which keeps every lookup of a trained
 * model at a fixed distance (see the file comment). Other step counts keep working, unaligned.
 */
export function demoTemplates(): ProtocolTemplates {
  return resolveTemplates(
    {
      system: 'Sum the digits mod 10 in {rounds} rounds.',
      user: '{question}{finalPart}{progressPart}',
      progress: ' Progress is: {progress}',
      finalRound: ' Final round now',
      singleRoundSystem: 'Sum the digits mod 10.',
      baseSystem: 'Sum the digits mod 10. Box the sum.',
    },
    'demo templates',
  );
}
