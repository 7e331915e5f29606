/**
 * rollout.ts — the rollout tree of one batch of questions, one `generate` call per round:
 *
 *   round 1:  Q questions x m samples (one request per question, n = m: the prompt is computed once)
 *   round 2:  each first-round response x k continuations (one request per response, n = k)
 *   round r:  each trajectory continues alone (Q x m x k requests, n = 1)
 *
 * Each round's chat is built by lib/motif's protocol (a fresh [system, user] chat whose user turn
 * carries the previous round's <answer> as progress), rendered with the model's chat template and
 * tokenized here, so the loss sees exactly the prompt ids the sampler saw. Plain GRPO and evaluation
 * use the same code (GRPO: one round; evaluation: m = k = 1, greedy).
 */
import type { GenerateRequest } from '../model/generate.js';
import {
  baseMessages,
  nextRoundMessages,
  type ProtocolTemplates,
  roundMessages,
  singleRoundMessages,
} from '../motif/protocol.js';
import type { FinishReason } from '../native/binding.js';
import { MotifError } from '../native/errors.js';
import type { ChatMessage } from '../text/chat-template.js';
import type { TrainableModel, TrainerTokenizer } from './types.js';

/** What a rollout needs of a model: generate, its tokenizer and config (and setAdapterEnabled for policy 'base'). */
export type RolloutModel = Pick<TrainableModel, 'generate' | 'tokenizer' | 'config'> &
  Partial<Pick<TrainableModel, 'setAdapterEnabled'>>;

/** Which first-round prompt: the MOTIF protocol, the single-round GRPO baseline, or a plain boxed-answer prompt. */
export type PromptStyle = 'motif' | 'grpo' | 'base';

/** How to roll out a batch. */
export interface RolloutSettings {
  prompt: PromptStyle;
  /** R (1 for 'grpo' and 'base'). */
  rounds: number;
  /** m: first-round samples per question. */
  samples: number;
  /** k: continuations of each first-round sample (0 when rounds is 1). */
  trajectories: number;
  maxTokens: number;
  temperature: number;
  topP: number;
  continuationTemperature: number;
  continuationTopP: number;
  /** 'base' turns the adapter off for rounds 2..R. */
  continuationPolicy: 'current' | 'base';
  templates: ProtocolTemplates;
}

/** One sampled completion. */
export interface Sampled {
  tokens: Int32Array;
  logprobs: Float32Array;
  text: string;
  finishReason: FinishReason;
}

/** The rollout tree of a batch. */
export interface RolloutResult {
  /** Round-1 prompt ids, one per question. */
  promptIds: Int32Array[];
  /** First-round completions, question-major: completion j of question q is at q x m + j. */
  first: Sampled[];
  /** Per first-round completion: its k trajectories, each the texts of rounds 2..R in order. */
  trajectories: string[][][];
  /** Tokens generated in round 1 and in rounds 2..R. */
  firstTokens: number;
  continuationTokens: number;
  /** Continuation token counts, one per continuation generated. */
  continuationLengths: number[];
  /** Completions (all rounds) that hit maxTokens. */
  truncated: number;
}

/** The first-round chat of a question. */
export function firstRoundMessages(
  question: string,
  s: Pick<RolloutSettings, 'prompt' | 'rounds' | 'templates'>,
): ChatMessage[] {
  if (s.prompt === 'grpo') return singleRoundMessages(question, s.templates);
  if (s.prompt === 'base') return baseMessages(question, s.templates);
  return roundMessages(question, 1, { rounds: s.rounds, templates: s.templates });
}

function needTokenizer(model: RolloutModel): TrainerTokenizer {
  if (!model.tokenizer)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      "training and evaluation need the model folder's tokenizer (tokenizer.json + tokenizer_config.json with a chat_template)",
    );
  return model.tokenizer;
}

/** Room for generated tokens after a prompt, within max_position_embeddings. */
function budget(model: RolloutModel, prompt: Int32Array, maxTokens: number, what: string): number {
  const room = model.config.maxPositionEmbeddings - prompt.length;
  if (room < 1)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      `${what}: the prompt is ${prompt.length} tokens, which leaves no room under max_position_embeddings (${model.config.maxPositionEmbeddings})`,
    );
  return Math.min(maxTokens, room);
}

/**
 * Rolls out `questions` (round 1, then rounds 2..R for MOTIF). `nextSeed` gives each request's
 * sampling seed in a fixed order, so a run is reproducible.
 */
export async function rollout(
  model: RolloutModel,
  questions: readonly string[],
  s: RolloutSettings,
  nextSeed: () => number,
  signal?: AbortSignal,
): Promise<RolloutResult> {
  const tok = needTokenizer(model);
  const decode = (c: { tokens: Int32Array; text?: string }) =>
    c.text ?? tok.decode(c.tokens, { skipSpecialTokens: true });
  const promptIds = questions.map((q) => tok.encodeChat(firstRoundMessages(q, s), { addGenerationPrompt: true }));
  const firstReqs: GenerateRequest[] = promptIds.map((p, i) => ({
    tokens: p,
    n: s.samples,
    maxTokens: budget(model, p, s.maxTokens, `question ${i} round 1`),
    temperature: s.temperature,
    topP: s.topP,
    seed: nextSeed(),
  }));
  const firstOut = await model.generate(firstReqs, { signal });
  const first: Sampled[] = [];
  let truncated = 0;
  firstOut.forEach((r, i) => {
    if (r.completions.length !== s.samples)
      throw new MotifError(
        'ERR_MOTIF_INTERNAL',
        `generate returned ${r.completions.length} completions for request ${i}, expected ${s.samples}`,
      );
    for (const c of r.completions) {
      first.push({ tokens: c.tokens, logprobs: c.logprobs, text: decode(c), finishReason: c.finishReason });
      if (c.finishReason === 'length') truncated++;
    }
  });
  const firstTokens = first.reduce((n, c) => n + c.tokens.length, 0);
  const trajectories: string[][][] = first.map(() => []);
  const result: RolloutResult = {
    promptIds,
    first,
    trajectories,
    firstTokens,
    continuationTokens: 0,
    continuationLengths: [],
    truncated,
  };
  const k = s.prompt === 'motif' && s.rounds > 1 ? s.trajectories : 0;
  if (k === 0 || signal?.aborted) return result;
  for (const t of trajectories) for (let j = 0; j < k; j++) t.push([]);
  const questionOf = (i: number) => questions[Math.floor(i / s.samples)] as string;
  const setAdapter = model.setAdapterEnabled?.bind(model);
  if (s.continuationPolicy === 'base') {
    if (!setAdapter)
      throw new MotifError(
        'ERR_MOTIF_UNSUPPORTED',
        "continuation policy 'base' needs a model whose adapter can be turned off",
      );
    setAdapter(false);
  }
  try {
    for (let round = 2; round <= s.rounds; round++) {
      // Round 2: one request per first-round response, n = k (same progress, shared prefix).
      // Later rounds: one request per trajectory (each has its own progress).
      const reqs: GenerateRequest[] = [];
      const owners: Array<[number, number]> = []; // [first-round index, trajectory] of each request's completion 0
      for (let i = 0; i < first.length; i++) {
        const perRequest = round === 2 ? [0] : Array.from({ length: k }, (_, j) => j);
        for (const j of perRequest) {
          const prev = round === 2 ? (first[i] as Sampled).text : (trajectories[i]?.[j]?.[round - 3] as string);
          const messages = nextRoundMessages(questionOf(i), prev, round - 1, {
            rounds: s.rounds,
            templates: s.templates,
          });
          const p = tok.encodeChat(messages, { addGenerationPrompt: true });
          reqs.push({
            tokens: p,
            n: round === 2 ? k : 1,
            maxTokens: budget(model, p, s.maxTokens, `completion ${i} round ${round}`),
            temperature: s.continuationTemperature,
            topP: s.continuationTopP,
            seed: nextSeed(),
          });
          owners.push([i, j]);
        }
      }
      const out = await model.generate(reqs, { signal });
      out.forEach((r, q) => {
        const [i, j0] = owners[q] as [number, number];
        r.completions.forEach((c, n) => {
          const t = trajectories[i]?.[j0 + n];
          if (!t) throw new MotifError('ERR_MOTIF_INTERNAL', `generate returned too many completions for request ${q}`);
          t.push(decode(c));
          result.continuationTokens += c.tokens.length;
          result.continuationLengths.push(c.tokens.length);
          if (c.finishReason === 'length') result.truncated++;
        });
      });
      if (signal?.aborted) break;
    }
  } finally {
    if (s.continuationPolicy === 'base') setAdapter?.(true);
  }
  return result;
}
