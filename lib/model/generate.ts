/**
 * generate.ts — the request/result types of Model.generate and the validation that turns user
 * requests into the addon's plain requests (one error shape, naming the request and field).
 */
import { randomInt } from 'node:crypto';
import type { FinishReason, NativeGenerateRequest } from '../native/binding.js';
import { invalidParameterError, MotifError } from '../native/errors.js';
import type { ChatMessage } from '../text/chat-template.js';
import type { Tokenizer } from '../text/tokenizer.js';

/** One prompt to complete `n` times. Give the prompt as `tokens`, or as `text` / `messages` when the model has a tokenizer. */
export interface GenerateRequest {
  tokens?: Int32Array | readonly number[];
  /** Plain text, encoded with the model's tokenizer (no chat template). */
  text?: string;
  /** A chat, rendered with the tokenizer's chat template and the generation prompt. */
  messages?: readonly ChatMessage[];
  /** Completions sharing this prompt (the prompt is computed once and forked). Default 1. */
  n?: number;
  /** Generated tokens per completion, at most. */
  maxTokens: number;
  /** 0 = greedy. Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 or undefined = off. */
  topK?: number;
  /** Nucleus sampling mass in (0, 1]; default 1 (off). */
  topP?: number;
  /** Keep tokens at least minP times as likely as the most likely one; default 0 (off). */
  minP?: number;
  /** Same seed and prompt => same tokens (on the same backend), whatever else is in the batch. Default: random. */
  seed?: number;
  /** Token ids that end a completion (kept as its last token). Default: the tokenizer's end-of-turn ids, if any. */
  stopTokens?: readonly number[];
}

export interface GeneratedCompletion {
  tokens: Int32Array;
  /** Log-prob of each token under the temperature-scaled distribution before top-k/top-p/min-p (log-softmax when greedy). */
  logprobs: Float32Array;
  finishReason: FinishReason;
  /** The decoded tokens (special tokens skipped), when the model has a tokenizer. */
  text?: string;
}

export interface GenerateResult {
  completions: GeneratedCompletion[];
}

/** Validates user requests into the addon's form. */
export function toNativeRequests(
  requests: readonly GenerateRequest[],
  vocab: number,
  maxPos: number,
  tokenizer: Tokenizer | undefined,
): NativeGenerateRequest[] {
  if (!Array.isArray(requests) || requests.length === 0)
    throw invalidParameterError('requests', 'a non-empty array of requests', requests);
  return requests.map((r, i) => {
    const at = `requests[${i}]`;
    if (r === null || typeof r !== 'object') throw invalidParameterError(at, 'an object', r);
    const given = [r.tokens !== undefined, r.text !== undefined, r.messages !== undefined].filter(Boolean).length;
    if (given !== 1) throw invalidParameterError(at, 'exactly one of tokens, text or messages', r);
    let prompt: Int32Array;
    if (r.tokens !== undefined) {
      if (!(r.tokens instanceof Int32Array) && !Array.isArray(r.tokens))
        throw invalidParameterError(`${at}.tokens`, 'an Int32Array or an array of token ids', r.tokens);
      prompt = r.tokens instanceof Int32Array ? r.tokens : Int32Array.from(r.tokens);
      for (let j = 0; j < r.tokens.length; j++) {
        const id = r.tokens[j];
        if (!Number.isInteger(id) || id < 0 || id >= vocab)
          throw new MotifError(
            'ERR_MOTIF_INVALID_ARGUMENT',
            `${at}.tokens[${j}] = ${String(id)} is not a token id: expected an integer in [0, ${vocab})`,
          );
      }
    } else {
      if (!tokenizer)
        throw new MotifError(
          'ERR_MOTIF_INVALID_ARGUMENT',
          `${at}: text and messages need a tokenizer, but the model folder has no tokenizer.json; pass tokens`,
        );
      if (r.text !== undefined) {
        if (typeof r.text !== 'string') throw invalidParameterError(`${at}.text`, 'a string', r.text);
        prompt = tokenizer.encode(r.text, { addSpecialTokens: false });
      } else {
        if (!Array.isArray(r.messages))
          throw invalidParameterError(`${at}.messages`, 'an array of chat messages', r.messages);
        prompt = tokenizer.encodeChat(r.messages, { addGenerationPrompt: true });
      }
    }
    if (prompt.length === 0) throw invalidParameterError(`${at} prompt`, 'at least one token', prompt);
    const n = r.n ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 65536)
      throw invalidParameterError(`${at}.n`, 'an integer in [1, 65536]', r.n);
    if (!Number.isInteger(r.maxTokens) || r.maxTokens < 1)
      throw invalidParameterError(`${at}.maxTokens`, 'a positive integer', r.maxTokens);
    if (prompt.length + r.maxTokens > maxPos)
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `${at}: prompt (${prompt.length} tokens) + maxTokens (${r.maxTokens}) exceeds the model's max_position_embeddings (${maxPos})`,
      );
    const temperature = r.temperature ?? 1;
    if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0)
      throw invalidParameterError(`${at}.temperature`, 'a number >= 0', r.temperature);
    const topK = r.topK ?? 0;
    if (!Number.isInteger(topK) || topK < 0) throw invalidParameterError(`${at}.topK`, 'an integer >= 0', r.topK);
    const topP = r.topP ?? 1;
    if (typeof topP !== 'number' || !(topP > 0 && topP <= 1))
      throw invalidParameterError(`${at}.topP`, 'a number in (0, 1]', r.topP);
    const minP = r.minP ?? 0;
    if (typeof minP !== 'number' || !(minP >= 0 && minP <= 1))
      throw invalidParameterError(`${at}.minP`, 'a number in [0, 1]', r.minP);
    const seed = r.seed ?? randomInt(0, 2 ** 47);
    if (!Number.isSafeInteger(seed) || seed < 0)
      throw invalidParameterError(`${at}.seed`, 'a non-negative safe integer', r.seed);
    const stopList = r.stopTokens ?? tokenizer?.stopIds ?? [];
    if (!Array.isArray(stopList))
      throw invalidParameterError(`${at}.stopTokens`, 'an array of token ids', r.stopTokens);
    for (const t of stopList)
      if (!Number.isInteger(t) || t < 0 || t >= vocab)
        throw invalidParameterError(`${at}.stopTokens`, `token ids in [0, ${vocab})`, t);
    return { prompt, n, maxTokens: r.maxTokens, temperature, topK, topP, minP, seed, stop: Int32Array.from(stopList) };
  });
}
