/**
 * sft.ts — supervised fine-tuning on the same engine as the GRPO trainer: `sft(model, examples,
 * options)` trains a LoRA adapter, or with `full` every weight of the model, to minimize the mean
 * negative log-likelihood of the response tokens (`lossAndGradients` with lossType 'sft': the fused
 * LM head and the checkpointed backward).
 *
 * Examples are `{ prompt, response }` pairs (an optional `system`) or `{ messages: [{ role, content },
 * ...] }` conversations whose last message is the assistant's response (the earlier turns are the
 * prompt). Each is chat-formatted with the model's template: the prompt turns rendered with
 * add_generation_prompt (`...<|im_start|>assistant\n`), then the response's tokens and the
 * end-of-turn token (`<|im_end|>`, `<|eot_id|>` or eos), which is exactly the template's rendering of
 * the whole conversation. Only the response tokens (end-of-turn included) are in the loss. A sequence
 * longer than maxLength is cut at the end (counted in `truncated`); one whose prompt alone fills it
 * is left out (counted in `dropped`).
 *
 * Per optimizer step: gradAccum micro-batches of batchSize examples from a seeded per-epoch shuffle,
 * each one `lossAndGradients` accumulated with scale 1 / (micro-batches of the step), then AdamW with
 * the cosine-with-warmup rate; a NaN/Inf loss or gradient skips the update. The output folder (a
 * lib/train/run-dir.ts run folder) gets manifest.json, one metrics.jsonl line per step,
 * checkpoints/step-N every saveEvery steps (and one when aborted), and the final PEFT adapter in
 * adapter/ — or, with `full`, the trained model as a HuggingFace folder in model/ (checkpoints are
 * model folders too). `resume` continues a LoRA run from its latest checkpoint: the data order and
 * schedule are functions of the step, so the resumed run ends where an uninterrupted one would.
 *
 * Also here: reading an SFT JSONL file with errors naming file:line (`readSftDataset`), and the
 * formatting of one example (`formatSftExample`), which tests and other tools reuse.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DataFileError, readJsonl } from '../data/jsonl.js';
import { MotifError } from '../native/errors.js';
import type { ChatMessage } from '../text/chat-template.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { DEFAULT_TRAIN_CONFIG } from './config.js';
import { DataOrder } from './rng.js';
import {
  CHECKPOINTS,
  latestCheckpoint,
  manifestHeader,
  RunDir,
  restoreCheckpoint,
  saveFinalAdapter,
  type TrainerState,
} from './run-dir.js';
import { cosineWithWarmup } from './schedule.js';
import { discardGradients, type ProgressSink } from './trainer.js';
import type { GrpoBatch, LoraConfig, OptimizerOptions, TrainableModel } from './types.js';

/** A prompt and the response to learn (chat-formatted as one user turn, after an optional system turn). */
export interface SftPair {
  prompt: string;
  response: string;
  system?: string;
}

/** A conversation; the last message (role 'assistant') is the response, the earlier ones the prompt. */
export interface SftConversation {
  messages: ChatMessage[];
}

/** One supervised example. */
export type SftExample = SftPair | SftConversation;

/** The parts of a tokenizer SFT uses (`Tokenizer` of lib/text has them all). */
export type SftTokenizer = Pick<Tokenizer, 'encode' | 'encodeChat' | 'imEndId' | 'eosId' | 'tokenToId'>;

/** One example as token ids: the prompt (not trained on) and the completion (in the loss). */
export interface SftTokens {
  promptIds: number[];
  completionIds: number[];
  /** The sequence was cut at maxLength. */
  truncated: boolean;
}

function formatError(where: string, message: string): MotifError {
  return new MotifError('ERR_MOTIF_FORMAT', `${where}: ${message}`);
}

/**
 * Checks one dataset row and returns it as an example. Accepted shapes: `{ prompt, response }` (or
 * `completion` for `response`, TRL's prompt-completion layout; optional `system`), or `{ messages }`.
 * Other fields are ignored. `where` (e.g. `data.jsonl:12`) starts every error message.
 */
export function sftExampleFromRow(value: unknown, where: string): SftExample {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw formatError(where, 'expected a JSON object with "prompt" and "response", or "messages"');
  const row = value as Record<string, unknown>;
  if (row.messages !== undefined) {
    const msgs = row.messages;
    if (!Array.isArray(msgs) || msgs.length < 2)
      throw formatError(where, '"messages" must be an array of at least two {role, content} turns');
    msgs.forEach((m, i) => {
      const turn = m as Record<string, unknown> | null;
      if (turn === null || typeof turn !== 'object' || Array.isArray(turn))
        throw formatError(where, `messages[${i}] must be an object {role, content}`);
      if (typeof turn.role !== 'string' || turn.role.length === 0)
        throw formatError(where, `messages[${i}].role must be a non-empty string`);
      if (typeof turn.content !== 'string') throw formatError(where, `messages[${i}].content must be a string`);
    });
    const last = msgs[msgs.length - 1] as ChatMessage;
    if (last.role !== 'assistant')
      throw formatError(
        where,
        `the last message must be the assistant's response (role "assistant"), got role "${last.role}"`,
      );
    if ((last.content as string).length === 0) throw formatError(where, 'the assistant response is empty');
    return { messages: msgs.map((m) => ({ ...(m as ChatMessage) })) };
  }
  const response = row.response ?? row.completion;
  if (typeof row.prompt !== 'string')
    throw formatError(where, '"prompt" must be a string (or give "messages" instead)');
  if (typeof response !== 'string' || response.length === 0)
    throw formatError(where, '"response" (or "completion") must be a non-empty string');
  if (row.system !== undefined && typeof row.system !== 'string')
    throw formatError(where, '"system" must be a string when given');
  return { prompt: row.prompt, response, ...(typeof row.system === 'string' ? { system: row.system } : {}) };
}

/** Reads a JSONL file of SFT examples; a bad line throws an error naming `file:line`. */
export async function readSftDataset(file: string): Promise<SftExample[]> {
  const out: SftExample[] = [];
  try {
    for await (const entry of readJsonl(file)) {
      if (entry.error) throw new MotifError('ERR_MOTIF_FORMAT', entry.error.message);
      out.push(sftExampleFromRow(entry.value, `${file}:${entry.line}`));
    }
  } catch (err) {
    if (err instanceof DataFileError) throw new MotifError('ERR_MOTIF_IO', err.message, { cause: err });
    throw err;
  }
  if (out.length === 0) throw new MotifError('ERR_MOTIF_FORMAT', `${file}: no examples (the file is empty)`);
  return out;
}

/** The token that ends an assistant turn: `<|im_end|>`, else `<|eot_id|>`, else the eos token. */
export function endOfTurnId(tokenizer: SftTokenizer): number {
  const id = tokenizer.imEndId ?? tokenizer.tokenToId('<|eot_id|>') ?? tokenizer.eosId;
  if (id === null || id === undefined)
    throw new MotifError(
      'ERR_MOTIF_FORMAT',
      'the tokenizer has no end-of-turn token (<|im_end|>, <|eot_id|> or an eos_token in tokenizer_config.json)',
    );
  return id;
}

/** The prompt turns and the response text of an example. */
function splitExample(ex: SftExample): { prompt: ChatMessage[]; response: string } {
  if ('messages' in ex)
    return { prompt: ex.messages.slice(0, -1), response: ex.messages[ex.messages.length - 1].content as string };
  const prompt: ChatMessage[] = ex.system !== undefined ? [{ role: 'system', content: ex.system }] : [];
  prompt.push({ role: 'user', content: ex.prompt });
  return { prompt, response: ex.response };
}

/**
 * Tokenizes one example: the prompt turns through the chat template with the generation prompt, then
 * the response and the end-of-turn token. Cut at `maxLength` tokens in all; null when the prompt alone
 * leaves no room for a response token.
 */
export function formatSftExample(tokenizer: SftTokenizer, ex: SftExample, maxLength: number): SftTokens | null {
  const { prompt, response } = splitExample(ex);
  const promptIds = Array.from(tokenizer.encodeChat(prompt, { addGenerationPrompt: true }));
  const completionIds = [...tokenizer.encode(response, { addSpecialTokens: false }), endOfTurnId(tokenizer)];
  if (promptIds.length === 0)
    throw new MotifError('ERR_MOTIF_FORMAT', 'the chat template rendered an empty prompt (no tokens)');
  const room = maxLength - promptIds.length;
  if (room < 1) return null;
  if (completionIds.length <= room) return { promptIds, completionIds, truncated: false };
  return { promptIds, completionIds: completionIds.slice(0, room), truncated: true };
}

/** Options of {@link sft}. Every one but `outDir` has a default. */
export interface SftOptions {
  /** The output folder: manifest.json, metrics.jsonl, checkpoints/, adapter/ (must not hold a run). */
  outDir: string;
  /** Passes over the examples (default 1). */
  epochs?: number;
  /** Examples per micro-batch (default 4). */
  batchSize?: number;
  /** Micro-batches per optimizer step (default 1). */
  gradAccum?: number;
  /** Peak learning rate (default 1e-4), cosine decay to 0 after a linear warmup. */
  lr?: number;
  /** Warmup as a fraction of the steps, rounded up (default 0.03). */
  warmupRatio?: number;
  /** AdamW (decoupled) weight decay (default 0). */
  weightDecay?: number;
  /** Global gradient-norm clipping (default 1; 0: none). */
  maxGradNorm?: number;
  /** AdamW betas and epsilon (default 0.9, 0.999, 1e-8). */
  beta1?: number;
  beta2?: number;
  adamEps?: number;
  /** Tokens per sequence, prompt included (default 1024, at most the model's max_position_embeddings). */
  maxLength?: number;
  /** Seed of the LoRA initialization and of the data order (default 0). */
  seed?: number;
  /** The adapter (default: `train`'s, rank 64, alpha 64, all seven projections). */
  lora?: Partial<Omit<LoraConfig, 'seed'>>;
  /**
   * Full-parameter training: every weight is trained (16 bytes of memory per parameter) and no
   * adapter is made; the result is a HuggingFace folder in `<outDir>/model` (default false).
   */
  full?: boolean;
  /** Held-out examples: their mean NLL per token is measured before training and after each epoch. */
  validation?: readonly SftExample[];
  /** Write checkpoints/step-N every N steps (default 0: only the final adapter). */
  saveEvery?: number;
  /** base_model_name_or_path of the adapters written (the model folder). */
  baseModel?: string;
  /** Formats the examples (default: the model's tokenizer). */
  tokenizer?: SftTokenizer;
  /** Recorded in manifest.json. */
  argv?: string[];
  manifestExtra?: Record<string, unknown>;
  progress?: ProgressSink;
  /** Warnings and notices (default: progress.log, else stderr). */
  log?: (message: string) => void;
  /** Called with each step's metrics (after they are written to metrics.jsonl). */
  onStep?: (metrics: SftStepMetrics) => void | Promise<void>;
  /** Aborting stops after the current step; the adapter so far is still written. */
  signal?: AbortSignal;
  /**
   * Continue the LoRA run in `outDir` from its latest checkpoint (saveEvery, or the one an abort
   * writes): same settings and examples required; the remaining steps then give exactly what an
   * uninterrupted run gives. Without a checkpoint the run starts over. Not with `full`.
   */
  resume?: boolean;
}

/** One line of metrics.jsonl. */
export interface SftStepMetrics {
  step: number;
  /** Epochs done, fractional. */
  epoch: number;
  /** Mean negative log-likelihood per response token over the step's examples (before the update). */
  loss: number;
  /** Response tokens in the loss. */
  tokens: number;
  examples: number;
  lr: number;
  /** Gradient norm before clipping (null when the update was skipped for a NaN/Inf loss). */
  gradNorm: number | null;
  /** Tokens (prompt + response) through the forward and backward pass per second. */
  tokensPerSecond: number;
  stepSeconds: number;
  skipped: boolean;
  warning?: string;
  /** Validation loss, on the last step of an epoch when there are validation examples. */
  validationLoss?: number;
}

/** What {@link sft} returns. */
export interface SftResult {
  outDir: string;
  /** The final PEFT adapter folder (absent when no step ran, or with `full`). */
  adapterDir?: string;
  /** With `full`: the trained model's HuggingFace folder (absent when no step ran). */
  modelDir?: string;
  steps: number;
  skippedSteps: number;
  /** Training examples used, and those cut at maxLength or left out (prompt too long). */
  examples: number;
  truncated: number;
  dropped: number;
  /** The last step's training loss. */
  finalLoss?: number;
  /** Validation loss before training and after the last epoch. */
  validationLossBefore?: number;
  validationLoss?: number;
  aborted: boolean;
}

interface ResolvedSft {
  epochs: number;
  batchSize: number;
  gradAccum: number;
  lr: number;
  warmupRatio: number;
  /** AdamW's settings but the rate. */
  optimizer: Omit<OptimizerOptions, 'lr'>;
  maxLength: number;
  seed: number;
  saveEvery: number;
  full: boolean;
  /** Absent with `full`. */
  lora?: Omit<LoraConfig, 'seed'>;
}

function resolveOptions(o: SftOptions, maxPositions: number): ResolvedSft {
  const bad = (name: string, expected: string, v: unknown) =>
    new MotifError('ERR_MOTIF_INVALID_ARGUMENT', `sft: ${name} must be ${expected}, got ${JSON.stringify(v)}`);
  const int = (name: string, v: unknown, def: number, min: number) => {
    const x = v ?? def;
    if (!Number.isSafeInteger(x) || (x as number) < min) throw bad(name, `an integer >= ${min}`, v);
    return x as number;
  };
  const num = (name: string, v: unknown, def: number, ok: (x: number) => boolean, expected: string) => {
    const x = v ?? def;
    if (typeof x !== 'number' || !Number.isFinite(x) || !ok(x)) throw bad(name, expected, v);
    return x;
  };
  const D = DEFAULT_TRAIN_CONFIG.lora;
  const lora = { rank: D.rank, alpha: D.alpha, targets: [...D.targets], rslora: D.rslora, ...o.lora };
  const maxLength = int('maxLength', o.maxLength, Math.min(1024, maxPositions), 2);
  if (maxLength > maxPositions)
    throw bad('maxLength', `at most the model's max_position_embeddings (${maxPositions})`, o.maxLength);
  return {
    epochs: int('epochs', o.epochs, 1, 1),
    batchSize: int('batchSize', o.batchSize, 4, 1),
    gradAccum: int('gradAccum', o.gradAccum, 1, 1),
    lr: num('lr', o.lr, 1e-4, (x) => x >= 0, 'a number >= 0'),
    warmupRatio: num('warmupRatio', o.warmupRatio, 0.03, (x) => x >= 0 && x <= 1, 'a number in [0, 1]'),
    optimizer: {
      weightDecay: num('weightDecay', o.weightDecay, 0, (x) => x >= 0, 'a number >= 0'),
      maxGradNorm: num('maxGradNorm', o.maxGradNorm, 1, (x) => x >= 0, 'a number >= 0'),
      beta1: num('beta1', o.beta1, 0.9, (x) => x >= 0 && x < 1, 'a number in [0, 1)'),
      beta2: num('beta2', o.beta2, 0.999, (x) => x >= 0 && x < 1, 'a number in [0, 1)'),
      eps: num('adamEps', o.adamEps, 1e-8, (x) => x > 0, 'a number > 0'),
    },
    maxLength,
    seed: int('seed', o.seed, 0, 0),
    saveEvery: int('saveEvery', o.saveEvery, 0, 0),
    full: o.full === true,
    ...(o.full === true ? {} : { lora }),
  };
}

/** The engine's batch (lossType 'sft') for a list of tokenized examples. */
export function sftBatch(items: readonly SftTokens[]): GrpoBatch {
  return {
    promptIds: items.map((t) => t.promptIds),
    completionIds: items.map((t) => t.completionIds),
    rewards: items.map(() => 0),
    advantages: items.map(() => 0), // ignored by 'sft'; given so that no reward statistics are needed
    groupSize: 1,
    lossType: 'sft',
    epsilon: 0,
    beta: 0,
    temperature: 1,
  };
}

/** Tokens through the model for a list of examples (prompt + completion). */
const sequenceTokens = (items: readonly SftTokens[]) =>
  items.reduce((s, t) => s + t.promptIds.length + t.completionIds.length, 0);

/** Mean NLL per response token over `items` (the forward pass only: no gradients). */
async function meanLoss(model: TrainableModel, items: readonly SftTokens[], batchSize: number): Promise<number> {
  let sum = 0;
  let tokens = 0;
  for (let i = 0; i < items.length; i += batchSize) {
    const res = await model.lossAndGradients(sftBatch(items.slice(i, i + batchSize)), { gradients: false });
    sum += res.loss * res.stats.tokens;
    tokens += res.stats.tokens;
  }
  return sum / tokens;
}

/** Tokenizes examples, counting the cut and the dropped ones. */
function tokenizeAll(
  tokenizer: SftTokenizer,
  examples: readonly SftExample[],
  maxLength: number,
  what: string,
): { items: SftTokens[]; truncated: number; dropped: number } {
  const items: SftTokens[] = [];
  let truncated = 0;
  let dropped = 0;
  examples.forEach((ex, i) => {
    const t = formatSftExample(tokenizer, sftExampleFromRow(ex, `${what}[${i}]`), maxLength);
    if (t === null) dropped++;
    else {
      if (t.truncated) truncated++;
      items.push(t);
    }
  });
  return { items, truncated, dropped };
}

/**
 * Supervised fine-tuning of a new LoRA adapter on `examples` (see the file header). Writes the run
 * folder `options.outDir` and the final adapter in `<outDir>/adapter`; returns a summary.
 */
export async function sft(
  model: TrainableModel,
  examples: readonly SftExample[],
  options: SftOptions,
): Promise<SftResult> {
  if (options === null || typeof options !== 'object' || typeof options.outDir !== 'string' || !options.outDir)
    throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', 'sft: options.outDir (the output folder) is required');
  if (!Array.isArray(examples) || examples.length === 0)
    throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', 'sft: examples must be a non-empty array');
  const cfg = resolveOptions(options, model.config.maxPositionEmbeddings);
  const { progress, signal, onStep } = options;
  const log = options.log ?? ((m: string) => (progress ? progress.log(m) : console.error(m)));
  const tokenizer = options.tokenizer ?? (model.tokenizer as SftTokenizer | undefined);
  if (!tokenizer || typeof tokenizer.encode !== 'function' || typeof tokenizer.encodeChat !== 'function')
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      'sft: the model has no tokenizer (the folder needs tokenizer.json and a chat_template)',
    );

  const train = tokenizeAll(tokenizer, examples, cfg.maxLength, 'examples');
  if (train.items.length === 0)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      `sft: every example's prompt is at least maxLength (${cfg.maxLength}) tokens long; raise maxLength`,
    );
  if (train.truncated > 0) log(`${train.truncated} training example(s) cut at maxLength ${cfg.maxLength} tokens`);
  if (train.dropped > 0)
    log(`${train.dropped} training example(s) left out: the prompt alone fills maxLength ${cfg.maxLength}`);
  const val = options.validation?.length
    ? tokenizeAll(tokenizer, options.validation, cfg.maxLength, 'validation')
    : undefined;
  if (val && val.truncated + val.dropped > 0)
    log(`validation: ${val.truncated} example(s) cut at maxLength, ${val.dropped} left out`);
  const valItems = val && val.items.length > 0 ? val.items : undefined;

  const n = train.items.length;
  const perStep = cfg.batchSize * cfg.gradAccum;
  const stepsPerEpoch = Math.ceil(n / perStep);
  const totalSteps = cfg.epochs * stepsPerEpoch;
  const schedule = cosineWithWarmup({ lr: cfg.lr, totalSteps, warmupRatio: cfg.warmupRatio });
  const configJson = JSON.stringify(cfg);
  const configHash = createHash('sha256').update(configJson).digest('hex').slice(0, 16);
  // The tokenized training examples, in order: a resumed run must see exactly the same ones.
  const fingerprint = createHash('sha256').update(JSON.stringify(train.items)).digest('hex').slice(0, 16);
  const resume = options.resume === true;
  if (resume && cfg.full)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      'sft: resume is for LoRA runs; --full checkpoints are model folders without the optimizer state',
    );

  const run = await RunDir.open(options.outDir, { resume });
  const manifest = resume ? await run.readManifest() : undefined;
  if (manifest) {
    const was = manifest.data as { fingerprint?: string } | undefined;
    if (manifest.format !== 'motif-native-sft-run')
      throw new MotifError(
        'ERR_MOTIF_FORMAT',
        `${run.dir}: not an sft run folder (manifest format ${String(manifest.format)})`,
      );
    if (manifest.configHash !== configHash)
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `cannot resume ${run.dir}: the settings differ from the run's manifest.json (config hash ${String(manifest.configHash)}, now ${configHash}); use the same flags`,
      );
    if (was?.fingerprint !== fingerprint)
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `cannot resume ${run.dir}: the training examples differ from the run's (fingerprint ${String(was?.fingerprint)}, now ${fingerprint})`,
      );
  }
  const ck = manifest ? await latestCheckpoint(run.dir) : undefined;
  if (!ck) {
    if (resume) log(`no complete checkpoint in ${run.dir}: starting the run over`);
    await run.writeManifest({
      ...(await manifestHeader('motif-native-sft-run', options.argv)),
      config: cfg,
      configHash,
      model: { base: options.baseModel ?? null, config: model.config },
      data: {
        trainExamples: n,
        truncated: train.truncated,
        dropped: train.dropped,
        validationExamples: valItems?.length ?? 0,
        stepsPerEpoch,
        totalSteps,
        fingerprint,
      },
      resumes: [],
      ...options.manifestExtra,
    });
    await run.truncateLogs(0);
  }

  if (cfg.full) {
    if (!model.enableFullTraining || !model.saveModel)
      throw new MotifError('ERR_MOTIF_UNSUPPORTED', 'sft: this model has no full-parameter training API');
    await model.enableFullTraining();
  } else {
    await model.createLora({ ...(cfg.lora as Omit<LoraConfig, 'seed'>), seed: cfg.seed });
  }
  let startStep = 0;
  let skippedBefore = 0;
  if (ck && manifest) {
    const state = await restoreCheckpoint(model, ck.dir, configHash);
    startStep = state.step;
    skippedBefore = state.skippedSteps;
    await run.truncateLogs(startStep);
    const resumes = Array.isArray(manifest.resumes) ? manifest.resumes : [];
    await run.writeManifest({
      ...manifest,
      resumes: [...resumes, { time: new Date().toISOString(), fromStep: startStep }],
    });
    log(`resuming ${run.dir} from checkpoint step ${startStep} of ${totalSteps}`);
  }
  const opt = cfg.optimizer;
  const result: SftResult = {
    outDir: run.dir,
    steps: 0,
    skippedSteps: 0,
    examples: n,
    truncated: train.truncated,
    dropped: train.dropped,
    aborted: false,
  };
  result.steps = startStep;
  result.skippedSteps = skippedBefore;
  if (valItems && startStep === 0) {
    result.validationLossBefore = await meanLoss(model, valItems, cfg.batchSize);
    log(`validation loss before training: ${result.validationLossBefore.toFixed(4)}`);
  }

  const order = new DataOrder(n, cfg.seed);
  let step = startStep;
  let lastState: Omit<TrainerState, 'format' | 'version' | 'time'> | undefined;
  let checkpointed = startStep;
  for (let epoch = Math.floor(startStep / stepsPerEpoch); epoch < cfg.epochs && !result.aborted; epoch++) {
    const firstStep = epoch === Math.floor(startStep / stepsPerEpoch) ? startStep % stepsPerEpoch : 0;
    for (let s = firstStep; s < stepsPerEpoch; s++) {
      if (signal?.aborted) {
        result.aborted = true;
        break;
      }
      step++;
      const t0 = performance.now();
      const first = s * perStep;
      const last = Math.min(n, first + perStep);
      const micro = Math.ceil((last - first) / cfg.batchSize);
      let lossSum = 0;
      let tokens = 0;
      let seqTokens = 0;
      let finite = true;
      for (let m = 0; m < micro; m++) {
        const items: SftTokens[] = [];
        for (let k = first + m * cfg.batchSize; k < Math.min(last, first + (m + 1) * cfg.batchSize); k++)
          items.push(train.items[order.at(epoch * n + k).index] as SftTokens);
        const res = await model.lossAndGradients(sftBatch(items), {
          accumulate: true,
          scale: 1 / micro,
          gradients: false,
        });
        lossSum += res.loss * res.stats.tokens;
        tokens += res.stats.tokens;
        seqTokens += sequenceTokens(items);
        if (!Number.isFinite(res.loss)) finite = false;
      }
      const lr = schedule.lrAt(step - 1);
      const loss = lossSum / tokens;
      let gradNorm: number | null = null;
      let skipped = false;
      let warning: string | undefined;
      if (!finite) {
        await discardGradients(model, { ...opt, lr });
        skipped = true;
        warning = `non-finite loss (${loss}); the update was skipped`;
      } else {
        const r = await model.optimizerStep({ ...opt, lr });
        gradNorm = r.gradNorm;
        if (r.skipped) {
          skipped = true;
          warning = `non-finite gradient (norm ${r.gradNorm}); the update was skipped`;
        }
      }
      const stepSeconds = (performance.now() - t0) / 1000;
      const metrics: SftStepMetrics = {
        step,
        epoch: (epoch * n + last) / n,
        loss,
        tokens,
        examples: last - first,
        lr,
        gradNorm,
        tokensPerSecond: seqTokens / Math.max(stepSeconds, 1e-9),
        stepSeconds,
        skipped,
        ...(warning ? { warning } : {}),
      };
      if (valItems && s === stepsPerEpoch - 1) {
        metrics.validationLoss = await meanLoss(model, valItems, cfg.batchSize);
        result.validationLoss = metrics.validationLoss;
      }
      result.steps = step;
      result.finalLoss = loss;
      if (skipped) result.skippedSteps++;
      await run.appendMetrics(metrics as unknown as Record<string, unknown>);
      progress?.update({ step, loss, tokensPerSecond: metrics.tokensPerSecond, skipped });
      if (warning) log(`step ${step}: ${warning}`);
      if (metrics.validationLoss !== undefined)
        log(`epoch ${epoch + 1}: validation loss ${metrics.validationLoss.toFixed(4)}`);
      await onStep?.(metrics);
      lastState = {
        step,
        dataCursor: epoch * n + last,
        rngState: 0,
        schedule: { position: step, lastLr: lr },
        configHash,
        skippedSteps: result.skippedSteps,
      };
      if (cfg.saveEvery > 0 && step % cfg.saveEvery === 0 && step < totalSteps && !skipped) {
        if (cfg.full) await model.saveModel?.(path.join(run.dir, CHECKPOINTS, `step-${step}`));
        else await run.checkpointModel(model, lastState, options.baseModel);
        checkpointed = step;
      }
    }
  }
  // Stopped early: a checkpoint of the last step, so that `resume` can pick up from it.
  if (result.aborted && lastState && checkpointed !== lastState.step && !cfg.full) {
    await run.checkpointModel(model, lastState, options.baseModel);
    log(`stopped after step ${lastState.step}; checkpoint written (continue with resume)`);
  }
  progress?.done();
  if (result.steps > 0) {
    if (cfg.full) {
      result.modelDir = path.join(run.dir, 'model');
      await model.saveModel?.(result.modelDir);
    } else result.adapterDir = await saveFinalAdapter(model, run.dir, options.baseModel);
  }
  return result;
}
