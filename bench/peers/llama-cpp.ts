/**
 * llama-cpp.ts — the llama.cpp peer of the rollout benchmark (issue 4, item 9), through node-llama-cpp
 * 3.21.1's prebuilt CPU binary: the MOTIF-shaped workload (`runLlamaCppRollout`) and plain batched
 * decode (`runLlamaCppDecode`) on a GGUF file (lib/export/exportGguf.ts makes one from the same weights).
 *
 * How llama.cpp is driven — the best its Node API allows:
 * - all sequences of a round live in ONE context (`sequences: S`, every chain of a round up to 256,
 *   llama.cpp's limit; more chains run in waves); each sequence runs its own evaluate() generator and
 *   node-llama-cpp packs the pending tokens of all sequences into shared llama_decode calls (prompts
 *   in chunks of `batchSize`, then one token per sequence per step);
 * - prefix reuse within a sequence: a sequence that already holds the question prefix (the same
 *   question's earlier round) keeps it, erases the rest and evaluates only the new tokens;
 * - prefix sharing across sequences (prefixSharing 'state-file', the default): node-llama-cpp has no
 *   KV copy between sequences, but it can save one sequence's state to a file and load it into
 *   another; the question prefix is prefilled once per question, saved, and loaded into the other
 *   sequences of that question. 'sequence' turns that off (each sequence prefills its own prompt
 *   unless it holds the prefix already); 'none' also turns off reuse within a sequence.
 *   prefixCacheHitRate reports the fraction of prompt tokens not recomputed, whatever the mode.
 * - generation runs to the token budget: `yieldEogToken: true` makes evaluate() yield an end-of-generation
 *   token and keep going instead of stopping (TokenBias cannot ban EOS/EOT: node-llama-cpp ignores it);
 * - sampling: temperature 0.8, top-p 0.95 (MOTIF's), one seed per sequence from `seed`; node-llama-cpp
 *   always adds a top-k stage (topK <= 0 means the whole vocabulary), so top-k is left to the caller.
 *
 * The work runs in a child process (`inProcess: false`, the default) started with UV_THREADPOOL_SIZE=1:
 * with several sequences in one context, node-llama-cpp's addon can otherwise sample one sequence from
 * another's logits (a race, seen in 8 of 24 runs) and it is slower; the child also makes peakRssBytes
 * llama.cpp's own (process.resourceUsage().maxRSS of that process).
 *
 * The workload (same as the motif-native side must run): Q questions; question q has a prompt of
 * `promptTokens` token ids drawn from `seed` (questionPrompt). Round 1: m = `generations` samples of
 * exactly `roundTokens` tokens from that prompt. Rounds 2..R: each first-round sample continues as
 * k = `trajectories` chains; each round's prompt is the question prompt + the previous round's last
 * `progressTokens` (32) generated tokens; every round generates `roundTokens` tokens. Rounds are
 * synchronous: all chains of a round start together. generatedTokens = Q·m·T·(1 + k·(R − 1)).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Token } from 'node-llama-cpp';

export type PrefixSharing = 'state-file' | 'sequence' | 'none';

export interface LlamaCppRolloutOptions {
  /** GGUF file of the model. */
  gguf: string;
  /** CPU threads for llama.cpp. */
  threads: number;
  /** Q: questions. */
  questions: number;
  /** m: first-round samples per question. */
  generations: number;
  /** k: continuations of each first-round sample through rounds 2..R. */
  trajectories: number;
  /** R: rounds (1 = first round only). */
  rounds: number;
  /** Length of each question's prompt (random token ids). */
  promptTokens: number;
  /** Tokens generated per sequence per round (always exactly this many). */
  roundTokens: number;
  /** Seeds the prompts and the samplers. */
  seed: number;
  /** Generated tokens of the previous round carried into the next round's prompt (default 32). */
  progressTokens?: number;
  /** Sampling (defaults: MOTIF's temperature 0.8, top-p 0.95; topK 0 = no top-k, i.e. the whole vocabulary). */
  temperature?: number;
  topP?: number;
  topK?: number;
  /** How prompt prefixes are reused (default 'state-file'; see the file comment). */
  prefixSharing?: PrefixSharing;
  /** At most this many sequences in the context (default: every chain of a round, up to 256, llama.cpp's LLAMA_MAX_SEQ). */
  maxSequences?: number;
  /** Tokens per llama_decode call (node-llama-cpp's batchSize, also n_ubatch; default 512). */
  batchSize?: number;
  /** Flash attention (default 'auto': llama.cpp decides). */
  flashAttention?: boolean | 'auto';
  /** Run in this process instead of a child with UV_THREADPOOL_SIZE=1 (default false). */
  inProcess?: boolean;
  /** Also return every generated token (result.tokens), for tests. */
  returnTokens?: boolean;
}

export interface LlamaCppRolloutResult {
  generatedTokens: number;
  /** Wall time of the whole workload (prefill included), model loading excluded. */
  seconds: number;
  /** generatedTokens / seconds. */
  tokensPerSecond: number;
  /** Prompt tokens computed (those served from a reused prefix are not counted). */
  prefillTokens: number;
  /** prefillTokens / time of the prompt phases (each round's prompts up to their first sampled token). */
  prefillTokensPerSecond: number;
  prefillSeconds: number;
  /** Prompt tokens not recomputed / all prompt tokens (0 with prefixSharing 'none'). */
  prefixCacheHitRate: number;
  /** Peak resident memory of the process that ran llama.cpp. */
  peakRssBytes: number;
  promptTokensTotal: number;
  sequences: number;
  prefixSharing: PrefixSharing;
  threads: number;
  /** node-llama-cpp and llama.cpp versions, and how it ran. */
  engine: string;
  /** With returnTokens: tokens[round][chain] (round 0: the Q·m first-round samples; later: the Q·m·k chains). */
  tokens?: number[][][];
}

export interface LlamaCppDecodeOptions {
  gguf: string;
  threads: number;
  /** Parallel sequences. */
  batch: number;
  /** Tokens each sequence generates in the timed phase. */
  tokens: number;
  /** Prompt length before the timed phase (default 16). */
  promptTokens?: number;
  seed?: number;
  flashAttention?: boolean | 'auto';
  inProcess?: boolean;
}

export interface LlamaCppDecodeResult {
  batch: number;
  generatedTokens: number;
  seconds: number;
  /** Aggregate decode tokens/s over all sequences (greedy sampling). */
  tokensPerSecond: number;
  peakRssBytes: number;
  threads: number;
  engine: string;
}

const RESULT_MARK = '@@llama-cpp-peer-result ';
/** llama.cpp refuses contexts of more sequences (n_seq_max must be <= 256). */
const LLAMA_MAX_SEQ = 256;
const THIS_FILE = fileURLToPath(import.meta.url);

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The prompt of question `question` (0-based): `length` token ids uniform in [0, vocabSize), a pure
 * function of (seed, question), so both engines of the benchmark can run the same prompts.
 */
export function questionPrompt(seed: number, question: number, length: number, vocabSize: number): number[] {
  const rand = prng((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(question + 1, 0x85ebca6b)) >>> 0);
  return Array.from({ length }, () => Math.floor(rand() * vocabSize));
}

function checkInt(name: string, v: unknown, min: number): number {
  if (!Number.isSafeInteger(v) || (v as number) < min)
    throw new Error(`llama.cpp peer: ${name} must be an integer ≥ ${min}, got ${String(v)}`);
  return v as number;
}

type Llama = Awaited<ReturnType<typeof import('node-llama-cpp')['getLlama']>>;
type LlamaContextSequence = ReturnType<
  Awaited<ReturnType<Awaited<ReturnType<Llama['loadModel']>>['createContext']>>['getSequence']
>;
type TokenGenerator = ReturnType<LlamaContextSequence['evaluate']>;
/** node-llama-cpp brands token ids; ours are plain integers in range. */
const asTokens = (ids: number[]): Token[] => ids as Token[];

async function loadLlama(threads: number): Promise<{ llama: Llama; version: string }> {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({
    gpu: false,
    build: 'never',
    skipDownload: true,
    maxThreads: threads,
    logLevel: LlamaLogLevel.error,
    progressLogs: false,
  });
  let version = 'node-llama-cpp';
  try {
    // node-llama-cpp's "exports" hide package.json: walk up from its entry point.
    let dir = path.dirname(fileURLToPath(import.meta.resolve('node-llama-cpp')));
    for (let i = 0; i < 4; i++, dir = path.dirname(dir)) {
      const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8').catch(() => '{}')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'node-llama-cpp') {
        version = `node-llama-cpp ${pkg.version}`;
        break;
      }
    }
  } catch {
    // version unknown
  }
  return {
    llama,
    version: `${version} (llama.cpp release tag ${llama.llamaCppRelease.release}, ${llama.buildType} CPU binary)`,
  };
}

/** Vocabulary size of a loaded model (the length of its tokenizer.ggml.tokens). */
function ggufVocabSize(model: { fileInfo: { metadata: unknown } }): number {
  const md = model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown[] } } };
  const n = md.tokenizer?.ggml?.tokens?.length;
  if (!n) throw new Error('llama.cpp peer: the GGUF file has no tokenizer.ggml.tokens');
  return n;
}

/** Pulls the next `n` tokens of a running evaluate() generator (its first call runs the prompt). */
async function pull(it: TokenGenerator, n: number, out: number[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    if (r.done) throw new Error('llama.cpp peer: generation stopped before the token budget');
    out.push(r.value);
  }
}

interface Slot {
  seq: LlamaContextSequence;
  /** Question whose prompt prefix the sequence holds at positions [0, prefixLen). */
  question: number;
}

async function rolloutInProcess(
  o: Required<Omit<LlamaCppRolloutOptions, 'inProcess'>>,
): Promise<LlamaCppRolloutResult> {
  const { llama, version } = await loadLlama(o.threads);
  const model = await llama.loadModel({ modelPath: o.gguf, useMmap: true });
  const Q = o.questions;
  const m = o.generations;
  const k = o.trajectories;
  const R = o.rounds;
  const T = o.roundTokens;
  const P = o.promptTokens;
  const progressLen = Math.min(o.progressTokens, T);
  const chainsPerRound = R > 1 ? Q * m * k : Q * m;
  const S = Math.min(o.maxSequences, chainsPerRound, LLAMA_MAX_SEQ);
  const perSeq = P + progressLen + T + 8;
  const context = await model.createContext({
    sequences: S,
    contextSize: perSeq,
    batchSize: o.batchSize,
    threads: { ideal: o.threads, min: o.threads },
    flashAttention: o.flashAttention,
    failedCreationRemedy: false,
  });
  const tmp = o.prefixSharing === 'state-file' ? await mkdtemp(path.join(os.tmpdir(), 'llama-cpp-peer-')) : '';
  try {
    const vocabSize = ggufVocabSize(model);
    const prompts = Array.from({ length: Q }, (_, q) => questionPrompt(o.seed, q, P, vocabSize));
    const slots: Slot[] = Array.from({ length: S }, () => ({ seq: context.getSequence(), question: -1 }));
    const stateFiles = new Map<number, Promise<string>>();
    let prefillTokens = 0;
    let promptTokensTotal = 0;
    let generatedTokens = 0;
    let prefillSeconds = 0;
    let samplerSeed = o.seed * 1000003;

    /** Brings `slot` to hold prompt[:-1] of question q reused where possible; returns the tokens still to evaluate. */
    const preparePrompt = async (slot: Slot, q: number, prompt: number[]): Promise<number[]> => {
      promptTokensTotal += prompt.length;
      const seq = slot.seq;
      const keep = o.prefixSharing === 'none' ? 0 : slot.question === q ? Math.min(P, prompt.length - 1) : 0;
      if (keep > 0) {
        if (seq.nextTokenIndex > keep) await seq.eraseContextTokenRanges([{ start: keep, end: seq.nextTokenIndex }]);
        prefillTokens += prompt.length - keep;
        return prompt.slice(keep);
      }
      await seq.clearHistory();
      slot.question = q;
      if (o.prefixSharing === 'state-file') {
        let ready = stateFiles.get(q);
        if (!ready) {
          // First sequence of this question: prefill the shared prefix once and save it for the others.
          const prefix = prompt.slice(0, P - 1);
          const f = path.join(tmp, `q${q}.state`);
          ready = seq
            .evaluateWithoutGeneratingNewTokens(asTokens(prefix))
            .then(() => seq.saveStateToFile(f))
            .then(() => f);
          stateFiles.set(q, ready);
          await ready;
          prefillTokens += prompt.length;
          return prompt.slice(prefix.length);
        }
        await seq.loadStateFromFile(await ready, { acceptRisk: true });
        const have = seq.nextTokenIndex;
        prefillTokens += prompt.length - have;
        return prompt.slice(have);
      }
      prefillTokens += prompt.length;
      return prompt;
    };

    /** One round: each task runs on its slot, in waves of tasks on distinct slots; returns each task's tokens. */
    const runRound = async (tasks: Array<{ q: number; slot: number; prompt: number[] }>): Promise<number[][]> => {
      const outs: number[][] = tasks.map(() => []);
      for (let w = 0; w < tasks.length; ) {
        const used = new Set<number>();
        let end = w;
        while (end < tasks.length && !used.has(tasks[end].slot)) used.add(tasks[end++].slot);
        const wave = tasks.slice(w, end);
        const t0 = process.hrtime.bigint();
        const its = await Promise.all(
          wave.map(async (t, i) => {
            const slot = slots[t.slot];
            const rest = await preparePrompt(slot, t.q, t.prompt);
            const it = slot.seq.evaluate(asTokens(rest), {
              temperature: o.temperature,
              topP: o.topP,
              topK: o.topK,
              seed: samplerSeed + w + i,
              yieldEogToken: true,
            });
            await pull(it, 1, outs[w + i]); // the prompt, up to the first sampled token
            return it;
          }),
        );
        prefillSeconds += Number(process.hrtime.bigint() - t0) / 1e9;
        await Promise.all(its.map((it, i) => pull(it, T - 1, outs[w + i])));
        await Promise.all(its.map((it) => it.return()));
        generatedTokens += wave.length * T;
        w = end;
      }
      samplerSeed += tasks.length;
      return outs;
    };

    const tStart = process.hrtime.bigint();
    // Chain c (question q, sample i, trajectory j; c = (q·m + i)·k + j) runs on slot c mod S. When every
    // chain has its own slot, round-1 sample (q, i) runs on the slot of chain (q, i, 0), which then continues it.
    const kk = R > 1 ? k : 1;
    const first = await runRound(
      Array.from({ length: Q * m }, (_, s) => ({
        q: Math.floor(s / m),
        slot: Q * m * kk <= S ? s * kk : s % S,
        prompt: prompts[Math.floor(s / m)],
      })),
    );
    const allTokens = [first];
    let prev: number[][] = [];
    for (let s = 0; s < Q * m; s++) for (let j = 0; j < k; j++) prev.push(first[s]);
    for (let r = 2; r <= R; r++) {
      prev = await runRound(
        prev.map((out, c) => {
          const q = Math.floor(c / (m * k));
          return { q, slot: c % S, prompt: [...prompts[q], ...out.slice(out.length - progressLen)] };
        }),
      );
      allTokens.push(prev);
    }
    const seconds = Number(process.hrtime.bigint() - tStart) / 1e9;
    return {
      generatedTokens,
      seconds,
      tokensPerSecond: generatedTokens / seconds,
      prefillTokens,
      prefillTokensPerSecond: prefillTokens / prefillSeconds,
      prefillSeconds,
      prefixCacheHitRate: promptTokensTotal > 0 ? 1 - prefillTokens / promptTokensTotal : 0,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      promptTokensTotal,
      sequences: S,
      prefixSharing: o.prefixSharing,
      threads: o.threads,
      engine: `${version}; ${S} sequences in one context, batchSize ${o.batchSize}, flash attention ${String(o.flashAttention)}, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 'unset'}`,
      tokens: o.returnTokens ? allTokens : undefined,
    };
  } finally {
    await context.dispose();
    await model.dispose();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

async function decodeInProcess(o: Required<Omit<LlamaCppDecodeOptions, 'inProcess'>>): Promise<LlamaCppDecodeResult> {
  const { llama, version } = await loadLlama(o.threads);
  const model = await llama.loadModel({ modelPath: o.gguf, useMmap: true });
  const context = await model.createContext({
    sequences: o.batch,
    contextSize: o.promptTokens + o.tokens + 8,
    threads: { ideal: o.threads, min: o.threads },
    flashAttention: o.flashAttention,
    failedCreationRemedy: false,
  });
  try {
    const vocabSize = ggufVocabSize(model);
    const seqs = Array.from({ length: o.batch }, () => context.getSequence());
    const outs: number[][] = seqs.map(() => []);
    const its = await Promise.all(
      seqs.map(async (seq, i) => {
        const it = seq.evaluate(asTokens(questionPrompt(o.seed, i, o.promptTokens, vocabSize)), {
          temperature: 0,
          yieldEogToken: true,
        });
        await pull(it, 1, outs[i]);
        return it;
      }),
    );
    const t0 = process.hrtime.bigint();
    await Promise.all(its.map((it, i) => pull(it, o.tokens, outs[i])));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await Promise.all(its.map((it) => it.return()));
    const generatedTokens = o.batch * o.tokens;
    return {
      batch: o.batch,
      generatedTokens,
      seconds,
      tokensPerSecond: generatedTokens / seconds,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      threads: o.threads,
      engine: `${version}; greedy, flash attention ${String(o.flashAttention)}, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 'unset'}`,
    };
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

/** Runs `kind` with `options` in a child node process with UV_THREADPOOL_SIZE=1; resolves with its result. */
function runInChild<T>(kind: 'rollout' | 'decode', options: object): Promise<T> {
  const args = THIS_FILE.endsWith('.ts')
    ? ['--import', 'tsx', THIS_FILE, '--child', kind]
    : [THIS_FILE, '--child', kind];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: path.resolve(path.dirname(THIS_FILE), '..', '..'),
      env: { ...process.env, UV_THREADPOOL_SIZE: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 19));
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
      if (code === 0 && line) {
        resolve(JSON.parse(line.slice(RESULT_MARK.length)) as T);
        return;
      }
      const tail = stderr.trim().split('\n').slice(-12).join('\n');
      reject(
        new Error(
          `llama.cpp peer (${kind}) failed: ${signal ? `killed by ${signal}` : `exit code ${code}`}${tail ? `\n${tail}` : ''}`,
        ),
      );
    });
    child.stdin.end(JSON.stringify(options));
  });
}

/**
 * Runs the MOTIF-shaped rollout workload through llama.cpp (see the file comment) and measures it.
 * Model loading is not timed. By default it runs in a child process with UV_THREADPOOL_SIZE=1.
 */
export async function runLlamaCppRollout(options: LlamaCppRolloutOptions): Promise<LlamaCppRolloutResult> {
  const o = {
    gguf: path.resolve(options.gguf),
    threads: checkInt('threads', options.threads, 1),
    questions: checkInt('questions', options.questions, 1),
    generations: checkInt('generations', options.generations, 1),
    trajectories: checkInt('trajectories', options.trajectories, 1),
    rounds: checkInt('rounds', options.rounds, 1),
    promptTokens: checkInt('promptTokens', options.promptTokens, 2),
    roundTokens: checkInt('roundTokens', options.roundTokens, 1),
    seed: checkInt('seed', options.seed, 0),
    progressTokens: checkInt('progressTokens', options.progressTokens ?? 32, 0),
    temperature: options.temperature ?? 0.8,
    topP: options.topP ?? 0.95,
    topK: options.topK ?? 0,
    prefixSharing: options.prefixSharing ?? 'state-file',
    maxSequences: checkInt('maxSequences', options.maxSequences ?? 256, 1),
    batchSize: checkInt('batchSize', options.batchSize ?? 512, 1),
    flashAttention: options.flashAttention ?? 'auto',
    returnTokens: options.returnTokens ?? false,
  } satisfies Required<Omit<LlamaCppRolloutOptions, 'inProcess'>>;
  if (!['state-file', 'sequence', 'none'].includes(o.prefixSharing))
    throw new Error(`llama.cpp peer: prefixSharing must be 'state-file', 'sequence' or 'none'`);
  return options.inProcess ? rolloutInProcess(o) : runInChild<LlamaCppRolloutResult>('rollout', o);
}

/**
 * Plain decode throughput: `batch` sequences in one context each generate `tokens` tokens (greedy)
 * after a short prompt; only the decode phase is timed. Runs in a child process by default.
 */
export async function runLlamaCppDecode(options: LlamaCppDecodeOptions): Promise<LlamaCppDecodeResult> {
  const o = {
    gguf: path.resolve(options.gguf),
    threads: checkInt('threads', options.threads, 1),
    batch: checkInt('batch', options.batch, 1),
    tokens: checkInt('tokens', options.tokens, 1),
    promptTokens: checkInt('promptTokens', options.promptTokens ?? 16, 1),
    seed: checkInt('seed', options.seed ?? 1, 0),
    flashAttention: options.flashAttention ?? 'auto',
  } satisfies Required<Omit<LlamaCppDecodeOptions, 'inProcess'>>;
  return options.inProcess ? decodeInProcess(o) : runInChild<LlamaCppDecodeResult>('decode', o);
}

// Child-process entry: `node [--import tsx] llama-cpp.ts --child rollout|decode` with the options as JSON on stdin.
if (process.argv[1] === THIS_FILE && process.argv[2] === '--child') {
  const kind = process.argv[3];
  let input = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) input += chunk;
  const opts = { ...JSON.parse(input), inProcess: true };
  const result = kind === 'decode' ? await runLlamaCppDecode(opts) : await runLlamaCppRollout(opts);
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(result)}\n`);
  process.exit(0);
}
