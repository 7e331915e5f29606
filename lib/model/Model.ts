/**
 * Model.ts — `loadModel` and the `Model` class: the public face of the native engine.
 *
 * Validation of user input happens here, with one error shape (MotifError); the addon
 * re-checks only what memory safety needs. Native work runs off the JS thread and calls
 * on one model are serialized by a lock, so concurrent callers simply queue.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { saveFullModel } from '../export/saveFullModel.js';
import {
  type AddonModel,
  type GenerateStats,
  type KvCacheStats,
  loadBinding,
  type NativeModelConfig,
} from '../native/binding.js';
import { invalidParameterError, MotifError, withJsStack } from '../native/errors.js';
import { loadTokenizer, type Tokenizer } from '../text/tokenizer.js';
import { loadAdapter } from '../train/peft.js';
import type { GrpoBatch, LoraConfig, LossResult, OptimizerOptions, OptimizerState } from '../train/types.js';
import { type GenerateRequest, type GenerateResult, toNativeRequests } from './generate.js';
import { AsyncLock } from './lock.js';
import {
  readAdapter,
  requireFullInfo,
  targetMask,
  toLossResult,
  toNativeBatch,
  validateLoraConfig,
  validateOptimizer,
  writeAdapter,
} from './training.js';

export type Device = 'auto' | 'cpu' | 'cuda';

export interface LoadModelOptions {
  /** Where to run: 'auto' (CUDA when a GPU is usable, else CPU), 'cpu' or 'cuda'. Default 'auto'. */
  device?: Device;
  /** CPU worker threads; default: all hardware threads. */
  threads?: number;
  /** Memory for generate()'s paged KV cache, in bytes. Default: a quarter of available memory, 64 MiB to 4 GiB. */
  kvCacheBytes?: number;
  /** Tokens per KV block (the unit of prefix sharing). Default 16. */
  kvBlockSize?: number;
  /** Rows per engine step: decode rows plus prompt chunks. Default 256. */
  maxStepTokens?: number;
  /**
   * How the weight files reach memory: 'map' memory-maps them (no copy, shared with the page cache
   * and other processes), 'read' reads them into private memory backed by transparent huge pages
   * (a copy, and a faster stream for the CPU kernels: batch-1 decode is bound by it). Default
   * 'auto': 'read' on the CPU, 'map' when the weights go to a GPU.
   */
  weights?: 'auto' | 'map' | 'read';
  /** Load tokenizer.json when the folder has one (default true). */
  tokenizer?: boolean;
  /** A PEFT LoRA folder to apply (ours or HF PEFT's: adapter_config.json + adapter_model.safetensors). */
  adapter?: string;
}

export interface GenerateOptions {
  /** Aborting ends the call early: unfinished completions come back with finishReason 'abort'. */
  signal?: AbortSignal;
  /** Streams every sampled token as it is chosen (request index, completion index, token, log-prob). */
  onToken?: (event: TokenEvent) => void;
}

export interface TokenEvent {
  request: number;
  completion: number;
  token: number;
  logprob: number;
}

/** The model's config.json, validated and with defaults filled in. */
export type ModelConfig = NativeModelConfig;

/** A batch of token sequences: one sequence, or several of any lengths. */
export type TokenInput = Int32Array | readonly number[];

const DEVICES: readonly string[] = ['auto', 'cpu', 'cuda'];

/**
 * Loads a HuggingFace model folder (config.json + model.safetensors, or shards with
 * model.safetensors.index.json; Qwen2ForCausalLM or LlamaForCausalLM; f32, f16 or bf16).
 * Weights are memory-mapped, not copied.
 */
export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<Model> {
  if (typeof dir !== 'string' || dir.length === 0) throw invalidParameterError('dir', 'a model folder path', dir);
  if (options === null || typeof options !== 'object') throw invalidParameterError('options', 'an object', options);
  const device = options.device ?? 'auto';
  if (!DEVICES.includes(device)) throw invalidParameterError('options.device', "'auto', 'cpu' or 'cuda'", device);
  const threads = options.threads ?? 0;
  if (!Number.isInteger(threads) || threads < 0 || threads > 1024)
    throw invalidParameterError('options.threads', 'an integer between 1 and 1024', options.threads);
  const kvCacheBytes = options.kvCacheBytes ?? 0;
  if (!Number.isSafeInteger(kvCacheBytes) || kvCacheBytes < 0)
    throw invalidParameterError('options.kvCacheBytes', 'a non-negative integer number of bytes', options.kvCacheBytes);
  const kvBlockSize = options.kvBlockSize ?? 16;
  if (!Number.isInteger(kvBlockSize) || kvBlockSize < 1 || kvBlockSize > 1024)
    throw invalidParameterError('options.kvBlockSize', 'an integer in [1, 1024]', options.kvBlockSize);
  if (options.adapter !== undefined && (typeof options.adapter !== 'string' || options.adapter.length === 0))
    throw invalidParameterError('options.adapter', 'a PEFT adapter folder path', options.adapter);
  const maxStepTokens = options.maxStepTokens ?? 256;
  if (!Number.isInteger(maxStepTokens) || maxStepTokens < 1)
    throw invalidParameterError('options.maxStepTokens', 'a positive integer', options.maxStepTokens);
  const weights = options.weights ?? 'auto';
  if (!['auto', 'map', 'read'].includes(weights))
    throw invalidParameterError('options.weights', "'auto', 'map' or 'read'", options.weights);
  const binding = loadBinding();
  const jsStack = new Error();
  const folder = resolve(dir);
  let native: AddonModel;
  try {
    native = await binding.AddonModel.load(folder, {
      device,
      threads,
      kvCacheBytes,
      kvBlockSize,
      maxStepTokens,
      weights,
    });
  } catch (err) {
    throw withJsStack(err, jsStack);
  }
  let tokenizer: Tokenizer | undefined;
  if (options.tokenizer !== false && existsSync(join(folder, 'tokenizer.json'))) {
    try {
      tokenizer = await loadTokenizer(folder);
    } catch (err) {
      native.dispose();
      throw err;
    }
  }
  const model = new Model(native, folder, tokenizer);
  if (options.adapter !== undefined) {
    try {
      await loadAdapter(model, options.adapter);
    } catch (err) {
      await model.dispose();
      throw err;
    }
  }
  return model;
}

export class Model {
  /** The folder the model was loaded from. */
  readonly dir: string;
  /** The validated config.json. */
  readonly config: ModelConfig;
  /** The folder's tokenizer (tokenizer.json + tokenizer_config.json), when it has one. */
  readonly tokenizer: Tokenizer | undefined;
  /** What the last generate() call did (steps, prefill/cached/generated tokens, seconds). */
  lastGenerateStats: GenerateStats | undefined;
  /** @internal */
  private _native: AddonModel | undefined;
  /** @internal */
  private readonly _lock = new AsyncLock();
  /** @internal */
  private _lora: LoraConfig | undefined;
  /** @internal */
  private _full = false;

  /** @internal Use loadModel(). */
  constructor(native: AddonModel, dir: string, tokenizer?: Tokenizer) {
    this._native = native;
    this.dir = dir;
    this.config = Object.freeze(native.config());
    this.tokenizer = tokenizer;
  }

  /**
   * Where the model runs and what it holds: backend name, why no GPU was used, weight bytes and
   * dtype, and how the weight files were loaded ('map' or 'read', see LoadModelOptions.weights).
   */
  get info(): { backend: string; deviceNote: string; weightBytes: number; weightDtype: string; weightStorage: string } {
    return this._live('info').info();
  }

  /** True once dispose() has been called. */
  get disposed(): boolean {
    return this._native === undefined;
  }

  /**
   * Logits for one sequence, or for several independent sequences (each starting at
   * position 0). Returns a Float32Array of [total tokens x vocabSize], row-major, the
   * sequences' rows back to back in input order.
   */
  async forward(tokens: TokenInput | readonly TokenInput[]): Promise<Float32Array> {
    const seqs = this._sequences(tokens);
    const total = seqs.reduce((n, s) => n + s.length, 0);
    const packed = new Int32Array(total);
    const lens = new Int32Array(seqs.length);
    let at = 0;
    seqs.forEach((s, i) => {
      packed.set(s, at);
      at += s.length;
      lens[i] = s.length;
    });
    const vocab = this.config.vocabSize;
    if (total * vocab > 2 ** 32 - 1)
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `forward: ${total} tokens x ${vocab} vocab logits do not fit one Float32Array; pass fewer tokens per call`,
      );
    const out = new Float32Array(total * vocab);
    const jsStack = new Error();
    const native = this._live('forward');
    return this._lock.run(async () => {
      try {
        await native.forward(packed, lens, out);
      } catch (err) {
        throw withJsStack(err, jsStack);
      }
      return out;
    });
  }

  /**
   * Completes every request in one batched native run: continuous batching over a paged KV cache,
   * prompts shared by n completions computed once, equal prefixes across requests (and earlier
   * calls) reused from the prefix cache. Returns one result per request, n completions each.
   */
  async generate(requests: readonly GenerateRequest[], options: GenerateOptions = {}): Promise<GenerateResult[]> {
    const native = this._live('generate');
    const plain = toNativeRequests(requests, this.config.vocabSize, this.config.maxPositionEmbeddings, this.tokenizer);
    const { signal, onToken } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal))
      throw invalidParameterError('options.signal', 'an AbortSignal', signal);
    if (onToken !== undefined && typeof onToken !== 'function')
      throw invalidParameterError('options.onToken', 'a function', onToken);
    const jsStack = new Error();
    return this._lock.run(async () => {
      const abort = () => native.abortGenerate();
      signal?.addEventListener('abort', abort, { once: true });
      let out: Awaited<ReturnType<AddonModel['generate']>>;
      let callbackError: { error: unknown } | undefined;
      try {
        const running = native.generate(
          plain,
          onToken &&
            ((request, completion, token, logprob) => {
              if (callbackError) return;
              try {
                onToken({ request, completion, token, logprob });
              } catch (error) {
                callbackError = { error }; // stop generating; rethrown below
                abort();
              }
            }),
        );
        if (signal?.aborted) abort();
        out = await running;
      } catch (err) {
        throw withJsStack(err, jsStack);
      } finally {
        signal?.removeEventListener('abort', abort);
      }
      if (callbackError) throw callbackError.error;
      this.lastGenerateStats = out.stats;
      const tok = this.tokenizer;
      return out.results.map((r) => ({
        completions: r.completions.map((c) =>
          tok ? { ...c, text: tok.decode(c.tokens, { skipSpecialTokens: true }) } : c,
        ),
      }));
    });
  }

  /**
   * generate() as a stream: yields every token as it is sampled; the iterator's return value is
   * the full results.
   */
  async *generateStream(
    requests: readonly GenerateRequest[],
    options: Omit<GenerateOptions, 'onToken'> = {},
  ): AsyncGenerator<TokenEvent, GenerateResult[], undefined> {
    const queue: TokenEvent[] = [];
    let wake: (() => void) | undefined;
    let settled = false;
    const done = this.generate(requests, {
      ...options,
      onToken: (e) => {
        queue.push(e);
        wake?.();
      },
    }).finally(() => {
      settled = true;
      wake?.();
    });
    done.catch(() => undefined); // rethrown below
    while (true) {
      while (queue.length > 0) yield queue.shift() as TokenEvent;
      if (settled) break;
      await new Promise<void>((r) => {
        wake = r;
      });
      wake = undefined;
    }
    return await done;
  }

  /** The KV cache's blocks: total, available, cached for prefix reuse, and the sum of refcounts (0 when idle). */
  async kvCacheStats(): Promise<KvCacheStats> {
    const native = this._live('kvCacheStats');
    return this._lock.run(async () => native.kvCacheStats());
  }

  // --- LoRA and training -----------------------------------------------------------------------

  /** The adapter's config, or undefined when the model has none. */
  get lora(): LoraConfig | undefined {
    return this._lora;
  }

  /** Creates (or replaces) a trainable LoRA adapter with PEFT's initialization (A Kaiming-uniform, B zeros). */
  async createLora(config: LoraConfig): Promise<void> {
    const native = this._live('createLora');
    const c = validateLoraConfig(config);
    await this._lock.run(async () => {
      native.createLora({
        rank: c.rank,
        alpha: c.alpha,
        rslora: c.rslora,
        targets: targetMask(c.targets),
        seed: c.seed,
      });
    });
    this._lora = c;
  }

  /** True once enableFullTraining() has run: every weight is trained, and there is no adapter. */
  get fullTraining(): boolean {
    return this._full;
  }

  /**
   * Full-parameter training: converts every weight (embedding, projections, biases, norm scales, LM
   * head) to an f32 trainable tensor, so lossAndGradients and optimizerStep train them all. Costs 16
   * bytes per parameter (weights, gradients, AdamW moments). Refused when the model has an adapter;
   * afterwards no adapter can be created. Save the result with saveModel().
   */
  async enableFullTraining(): Promise<void> {
    const native = this._live('enableFullTraining');
    if (this._lora)
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        'enableFullTraining: the model has a LoRA adapter; full-parameter training needs a model loaded without one',
      );
    const jsStack = new Error();
    await this._lock.run(async () => {
      try {
        await native.enableFullTraining();
      } catch (err) {
        throw withJsStack(err, jsStack);
      }
    });
    this._full = true;
  }

  /** Every trained weight under its HF name (after enableFullTraining), as f32 copies with their shapes. */
  async getFullTensors(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const native = this._live('getFullTensors');
    return this._lock.run(async () => {
      const info = requireFullInfo(native, 'getFullTensors');
      return new Map(
        info.names.map((name, i) => [name, { shape: info.shapes[i], data: native.readFull(name, 'weight') }]),
      );
    });
  }

  /**
   * Writes the weights under full-parameter training as a HuggingFace folder: model.safetensors
   * (each tensor in the source checkpoint's dtype unless `dtype` says otherwise) and the source
   * folder's config.json and tokenizer files. Atomic; an existing `dir` is replaced only with `overwrite`.
   */
  async saveModel(dir: string, options: { dtype?: 'f32' | 'f16' | 'bf16'; overwrite?: boolean } = {}): Promise<void> {
    const native = this._live('saveModel');
    if (typeof dir !== 'string' || dir.length === 0) throw invalidParameterError('dir', 'a folder path', dir);
    await this._lock.run(async () => {
      const info = requireFullInfo(native, 'saveModel');
      await saveFullModel(
        { names: info.names, shapes: info.shapes, read: (name) => native.readFull(name, 'weight') },
        { sourceDir: this.dir, outDir: dir, dtype: options.dtype, overwrite: options.overwrite },
      );
    });
  }

  /** A copy of every adapter tensor under its PEFT name (lora_A [r, in], lora_B [out, r]). */
  async getAdapterTensors(): Promise<Map<string, Float32Array>> {
    const native = this._live('getAdapterTensors');
    return this._lock.run(async () => readAdapter(native, 'weight'));
  }

  /** Overwrites every adapter tensor (same names and sizes as getAdapterTensors returns). */
  async setAdapterTensors(tensors: Map<string, Float32Array>): Promise<void> {
    const native = this._live('setAdapterTensors');
    await this._lock.run(async () => writeAdapter(native, 'weight', tensors));
  }

  /** Turns the adapter off (the base model) or back on, for forward, generate and training. */
  setAdapterEnabled(on: boolean): void {
    this._live('setAdapterEnabled').setLoraEnabled(Boolean(on));
  }

  /**
   * TRL's GRPO loss of a batch and the gradients of `scale x loss`: the adapter's under PEFT names,
   * or with full-parameter training every weight's under HF names. With `accumulate`, the gradients
   * are also added to the model's accumulators for optimizerStep(). `gradients: false` leaves them
   * out of the result (no copies); with `accumulate` false as well, only the forward pass runs.
   */
  async lossAndGradients(
    batch: GrpoBatch,
    opts: { accumulate?: boolean; scale?: number; gradients?: boolean } = {},
  ): Promise<LossResult & { logps: Float32Array; advantages: Float32Array }> {
    const native = this._live('lossAndGradients');
    const plain = toNativeBatch(batch, this.config.vocabSize);
    const scale = opts.scale ?? 1;
    if (typeof scale !== 'number' || !Number.isFinite(scale))
      throw invalidParameterError('opts.scale', 'a finite number', opts.scale);
    const jsStack = new Error();
    return this._lock.run(async () => {
      try {
        const grads = opts.gradients ?? true;
        return toLossResult(await native.lossAndGradients(plain, Boolean(opts.accumulate), scale, grads));
      } catch (err) {
        throw withJsStack(err, jsStack);
      }
    });
  }

  /** AdamW on the accumulated gradients (clipped to maxGradNorm), then zeroes them; skipped when a gradient is NaN/Inf. */
  async optimizerStep(opts: OptimizerOptions): Promise<{ gradNorm: number; skipped: boolean }> {
    const native = this._live('optimizerStep');
    const o = validateOptimizer(opts);
    const jsStack = new Error();
    return this._lock.run(async () => {
      try {
        return await native.optimizerStep(o);
      } catch (err) {
        throw withJsStack(err, jsStack);
      }
    });
  }

  /** AdamW's step count and moments (names: `<PEFT name>.exp_avg` / `.exp_avg_sq`), for checkpoints. */
  async getOptimizerState(): Promise<OptimizerState> {
    const native = this._live('getOptimizerState');
    return this._lock.run(async () => {
      const tensors = new Map<string, Float32Array>();
      for (const which of ['exp_avg', 'exp_avg_sq'] as const)
        for (const [name, t] of readAdapter(native, which)) tensors.set(`${name}.${which}`, t);
      return { step: native.loraInfo()?.step ?? 0, tensors };
    });
  }

  async setOptimizerState(state: OptimizerState): Promise<void> {
    const native = this._live('setOptimizerState');
    await this._lock.run(async () => {
      for (const which of ['exp_avg', 'exp_avg_sq'] as const) {
        const part = new Map<string, Float32Array>();
        for (const [key, t] of state.tensors)
          if (key.endsWith(`.${which}`)) part.set(key.slice(0, -which.length - 1), t);
        writeAdapter(native, which, part);
      }
      native.setLoraStep(state.step);
    });
  }

  /** Frees the model's native memory after any call in flight finishes. Later calls reject. */
  async dispose(): Promise<void> {
    const native = this._native;
    if (!native) return;
    this._native = undefined;
    await this._lock.idle();
    native.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  /** @internal */
  private _live(what: string): AddonModel {
    if (!this._native) throw new MotifError('ERR_MOTIF_DISPOSED', `${what}: the model has been disposed`);
    return this._native;
  }

  /** @internal Validates token input into a list of Int32Array sequences. */
  private _sequences(input: TokenInput | readonly TokenInput[]): Int32Array[] {
    this._live('forward');
    if (!Array.isArray(input) && !(input instanceof Int32Array))
      throw invalidParameterError('tokens', 'an Int32Array, an array of token ids, or an array of those', input);
    const nested = Array.isArray(input) && input.length > 0 && typeof input[0] !== 'number';
    const list = (nested ? input : [input]) as readonly TokenInput[];
    if (list.length === 0) throw invalidParameterError('tokens', 'at least one sequence', input);
    const vocab = this.config.vocabSize;
    const maxPos = this.config.maxPositionEmbeddings;
    return list.map((seq, s) => {
      const where = nested ? `tokens[${s}]` : 'tokens';
      if (!(seq instanceof Int32Array) && !Array.isArray(seq))
        throw invalidParameterError(where, 'an Int32Array or an array of token ids', seq);
      if (seq.length === 0) throw invalidParameterError(where, 'at least one token', seq);
      if (seq.length > maxPos)
        throw new MotifError(
          'ERR_MOTIF_INVALID_ARGUMENT',
          `${where} has ${seq.length} tokens, more than the model's max_position_embeddings (${maxPos})`,
        );
      for (let i = 0; i < seq.length; i++) {
        const id = seq[i];
        if (!Number.isInteger(id) || id < 0 || id >= vocab)
          throw new MotifError(
            'ERR_MOTIF_INVALID_ARGUMENT',
            `${where}[${i}] = ${String(id)} is not a token id: expected an integer in [0, ${vocab}) (the model's vocab_size)`,
          );
      }
      return seq instanceof Int32Array ? seq : Int32Array.from(seq);
    });
  }
}
