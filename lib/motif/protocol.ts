// The MOTIF round protocol: every prompt template in one place (defaults copied in meaning
// from the official MOTIF code; each one overridable from a JSON file), the messages of each
// round (a fresh [system, user] chat per round; round i+1's user message carries round i's
// <answer> as "progress"), progress extraction, and the single-round GRPO / base prompts.

import { readFile } from 'node:fs/promises';

import type { ChatMessage } from '../text/chat-template.js';
import { extractXmlAnswer } from '../text/extract.js';

/**
 * The prompt templates. Placeholders in braces are replaced: `{rounds}` (the number of
 * rounds), `{finalOrdinal}` (`third` for 3 rounds), `{round}` (the round the progress comes
 * from), `{progress}`, `{question}`, `{progressPart}` and `{finalPart}`. Other braces (such
 * as the `{}` of `\boxed{}`) are left alone.
 */
export interface ProtocolTemplates {
  /** MOTIF system prompt (uses `{rounds}`, `{finalOrdinal}`). */
  system: string;
  /** The user message of a round (uses `{question}`, `{progressPart}`, `{finalPart}`). */
  user: string;
  /** What rounds after the first add: the previous round's progress (uses `{round}`, `{progress}`). */
  progress: string;
  /** What the final round adds (uses `{finalOrdinal}`). */
  finalRound: string;
  /** System prompt of the single-round GRPO baseline. */
  singleRoundSystem: string;
  /** System prompt used to evaluate a model without the tag format. */
  baseSystem: string;
}

/** The official MOTIF / GRPO-baseline prompts (purbeshmitra/MOTIF motif.py, vanilla_grpo.py). */
export const DEFAULT_TEMPLATES: Readonly<ProtocolTemplates> = Object.freeze({
  system:
    '\nYou are a helpful assistant. When the user asks a question, you solve it in {rounds} rounds.\n' +
    'In each round, you first think about the reasoning process of answering and then provide the user with a detailed progress about it.\n' +
    'The reasoning process and the progress are enclosed within <reasoning> </reasoning> and <answer> </answer> tags respectively.\n' +
    'Therefore, you follow the strict format:\n' +
    '<reasoning>\nreasoning process here\n</reasoning>\n<answer>\ndetailed progress here\n</answer>\n\n' +
    'The User provides this detailed progress as additional context in the next round.\n' +
    'You then respond again with further thinking and further progress.\n' +
    'When the User says that current round is the final ({finalOrdinal}) round, you provide an answer inside the answer tags.\n' +
    'You also enclose a final answer in {finalOrdinal} round in the box: \\boxed{}. Only this boxed final answer is used for evaluation.\n',
  user: '{question}{progressPart}{finalPart}',
  progress: ' Progress in round {round}: "{progress}"',
  finalRound: ' Current round is the final ({finalOrdinal}) round. Provide a final answer.',
  singleRoundSystem:
    'You are a helpful assistant.\n' +
    'When the user asks a question, you first think about the reasoning process in mind and then provide the user with an answer.\n' +
    'The reasoning process and the answer are enclosed within <reasoning> </reasoning> and <answer> </answer> tags, respectively.\n' +
    'In your answer, you also enclose your final answer in the box: \\boxed{}.\n' +
    'Therefore, you respond in the following strict format:\n' +
    '<reasoning>\nreasoning process here\n</reasoning>\n<answer>\nanswer here\n</answer>\n',
  baseSystem: 'You are a helpful assistant. In your response, you enclose your final answer in the box: \\boxed{}.',
});

const KEYS = Object.keys(DEFAULT_TEMPLATES) as (keyof ProtocolTemplates)[];

const REQUIRED: Partial<Record<keyof ProtocolTemplates, string[]>> = {
  user: ['{question}', '{progressPart}', '{finalPart}'],
  progress: ['{progress}'],
};

/** Checks a partial set of templates; `where` names the source in errors. Returns the full set. */
export function resolveTemplates(partial: Partial<ProtocolTemplates> = {}, where = 'templates'): ProtocolTemplates {
  if (!partial || typeof partial !== 'object' || Array.isArray(partial))
    throw new TypeError(`${where}: expected an object of templates`);
  const out: ProtocolTemplates = { ...DEFAULT_TEMPLATES };
  for (const [k, v] of Object.entries(partial)) {
    if (!KEYS.includes(k as keyof ProtocolTemplates)) {
      throw new Error(`${where}: unknown template "${k}" (known: ${KEYS.join(', ')})`);
    }
    if (typeof v !== 'string') throw new TypeError(`${where}: template "${k}" must be a string`);
    for (const ph of REQUIRED[k as keyof ProtocolTemplates] ?? []) {
      if (!v.includes(ph)) throw new Error(`${where}: template "${k}" must contain ${ph}`);
    }
    out[k as keyof ProtocolTemplates] = v;
  }
  return out;
}

/**
 * Reads templates from a JSON file (an object with any of the {@link ProtocolTemplates}
 * keys; the others keep their defaults). Errors name the file.
 */
export async function loadTemplates(file: string): Promise<ProtocolTemplates> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: cannot read templates: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: invalid JSON: ${(err as Error).message}`);
  }
  return resolveTemplates(value as Partial<ProtocolTemplates>, file);
}

const ORDINALS = [
  'zeroth',
  'first',
  'second',
  'third',
  'fourth',
  'fifth',
  'sixth',
  'seventh',
  'eighth',
  'ninth',
  'tenth',
];

/** English ordinal word of n (1 → "first", 3 → "third"; beyond ten: "11th", "22nd"). */
export function ordinal(n: number): string {
  if (n >= 0 && n < ORDINALS.length) return ORDINALS[n] as string;
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}

/** Replaces `{name}` placeholders of a template in one pass (inserted values are not rescanned). */
function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{([a-zA-Z]+)\}/g, (m, name: string) =>
    Object.hasOwn(values, name) ? (values[name] as string) : m,
  );
}

function checkRounds(rounds: number): void {
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`rounds must be a positive integer, got ${rounds}`);
}

/** The MOTIF system prompt for `rounds` rounds. */
export function motifSystemPrompt(rounds = 3, templates: ProtocolTemplates = DEFAULT_TEMPLATES): string {
  checkRounds(rounds);
  return fill(templates.system, { rounds: String(rounds), finalOrdinal: ordinal(rounds) });
}

/** Options of {@link roundUserMessage} and {@link roundMessages}. */
export interface RoundOptions {
  /** Total number of rounds R. Default 3. */
  rounds?: number;
  /** The progress of the previous round (required for rounds after the first; see {@link extractProgress}). */
  progress?: string;
  /** Templates; default {@link DEFAULT_TEMPLATES}. */
  templates?: ProtocolTemplates;
}

/**
 * The user message of round `round` (1-based): round 1 is the question itself; round i+1
 * appends ` Progress in round i: "<progress>"`; the final round (R > 1) also appends the
 * final-round instruction. With R = 1 the only round carries the final-round instruction.
 */
export function roundUserMessage(question: string, round: number, options: RoundOptions = {}): string {
  const rounds = options.rounds ?? 3;
  const t = options.templates ?? DEFAULT_TEMPLATES;
  checkRounds(rounds);
  if (!Number.isInteger(round) || round < 1 || round > rounds)
    throw new RangeError(`round must be in 1..${rounds}, got ${round}`);
  let progressPart = '';
  if (round > 1) {
    if (options.progress === undefined) throw new TypeError(`round ${round} needs the progress of round ${round - 1}`);
    progressPart = fill(t.progress, { round: String(round - 1), progress: options.progress });
  }
  const finalPart =
    round === rounds ? fill(t.finalRound, { finalOrdinal: ordinal(rounds), rounds: String(rounds) }) : '';
  return fill(t.user, { question, progressPart, finalPart });
}

/** The fresh chat of one round: `[system, user]`. */
export function roundMessages(question: string, round: number, options: RoundOptions = {}): ChatMessage[] {
  const rounds = options.rounds ?? 3;
  return [
    { role: 'system', content: motifSystemPrompt(rounds, options.templates ?? DEFAULT_TEMPLATES) },
    { role: 'user', content: roundUserMessage(question, round, options) },
  ];
}

/**
 * The progress a round hands to the next: the text of its last `<answer>` section, trimmed
 * (a missing closing tag is fine: the text runs to the end). With no `<answer>` tag at all,
 * the whole response is the progress — the official code's behaviour.
 */
export function extractProgress(response: string): string {
  return extractXmlAnswer(response);
}

/** The chat of the round after `previousRound`, built from that round's response. */
export function nextRoundMessages(
  question: string,
  previousResponse: string,
  previousRound: number,
  options: Omit<RoundOptions, 'progress'> = {},
): ChatMessage[] {
  return roundMessages(question, previousRound + 1, { ...options, progress: extractProgress(previousResponse) });
}

/** The single-round prompt of the plain-GRPO baseline: `[system, user]`. */
export function singleRoundMessages(question: string, templates: ProtocolTemplates = DEFAULT_TEMPLATES): ChatMessage[] {
  return [
    { role: 'system', content: templates.singleRoundSystem },
    { role: 'user', content: question },
  ];
}

/** The prompt for evaluating a model without the tag format: `[system, user]`. */
export function baseMessages(question: string, templates: ProtocolTemplates = DEFAULT_TEMPLATES): ChatMessage[] {
  return [
    { role: 'system', content: templates.baseSystem },
    { role: 'user', content: question },
  ];
}
