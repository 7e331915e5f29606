/**
 * traces.ts — round-by-round supervised traces of the demo task, for making the demo model: each
 * problem is played through the MOTIF round protocol (the same messages lib/train/rollout.ts builds,
 * progress taken from <answer> by the protocol's own extractProgress), and every round becomes one
 * (chat messages, response) example. A drop rule decides, per non-final round, whether the trace
 * hands on its progress or loses the running value — the imperfection the demo's RL run then fixes.
 */
import type { DatasetRow } from '../data/datasets.js';
import { createRng, type Rng } from '../data/random.js';
import { extractProgress, roundMessages } from '../motif/protocol.js';
import type { ChatMessage } from '../text/chat-template.js';
import { type DemoState, type DemoTask, demoRoundResponse, demoTemplates, parseDemoProgress } from './task.js';

/** One supervised example: the chat of a round and the response to learn. */
export interface DemoTraceExample {
  id: string;
  round: number;
  messages: ChatMessage[];
  response: string;
  /** True when this round dropped its progress on purpose. */
  dropped: boolean;
}

/** Whether a non-final round drops its progress, given the state it reached. */
export type DropRule = (after: DemoState, rng: Rng) => boolean;

/**
 * The demo model's drop rule: drop with probability `high` when the running value reached is 5 or
 * more, `low` otherwise. With high > 0.5 a model that learns it greedily drops about half the time
 * while still sampling the carry often enough for RL to find it.
 */
export function valueDropRule(high: number, low: number): DropRule {
  for (const [name, p] of [
    ['high', high],
    ['low', low],
  ] as const)
    if (!(p >= 0 && p <= 1)) throw new RangeError(`valueDropRule: ${name} must be a probability, got ${p}`);
  return (after, rng) => rng() < (after.value >= 5 ? high : low);
}

/** Never drops (the correct worker). */
export const neverDrop: DropRule = () => false;

/** The R examples of one problem, played from the start state through the protocol. */
export function demoTraces(row: DatasetRow, task: DemoTask, drop: DropRule, rng: Rng): DemoTraceExample[] {
  const templates = demoTemplates();
  const out: DemoTraceExample[] = [];
  let state: DemoState = { next: 0, value: 0 };
  let progress: string | undefined;
  for (let round = 1; round <= task.rounds; round++) {
    const final = round === task.rounds;
    const messages = roundMessages(row.question, round, { rounds: task.rounds, progress, templates });
    let r = demoRoundResponse(row.question, state, final, task);
    const dropped = !final && drop(r.after, rng);
    if (dropped) r = demoRoundResponse(row.question, state, final, task, true);
    out.push({ id: row.id, round, messages, response: r.response, dropped });
    progress = extractProgress(r.response);
    const next = parseDemoProgress(progress);
    if (!final && next === null) throw new Error(`demo trace ${row.id}: round ${round} wrote no progress`);
    if (next) state = next;
  }
  return out;
}

/** Traces of many problems, reproducible from `seed`. */
export function demoTraceSet(
  rows: readonly DatasetRow[],
  task: DemoTask,
  drop: DropRule,
  seed: number,
): DemoTraceExample[] {
  const rng = createRng(seed);
  return rows.flatMap((row) => demoTraces(row, task, drop, rng));
}
