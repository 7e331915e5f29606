/**
 * motif-rollout.ts — motif-native's side of the rollout benchmark: the MOTIF-shaped workload
 * (`runMotifRollout`) and plain batched decode (`runMotifDecode`) through model.generate, each
 * in a child process so peakRssBytes is this engine's own.
 *
 * The workload is the one bench/peers/llama-cpp.ts runs (same prompts from questionPrompt, same
 * shape): round 1 is one request per question with n = m samples; round 2 one request per
 * first-round sample with n = k; rounds 3..R one request per chain. Every round's prompt is the
 * question prompt + the previous round's last `progressTokens` tokens; generation runs to the
 * budget (no stop tokens). One generate() call per round for every question at once.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type GenerateRequest, loadModel } from '../lib/index.js';
import { questionPrompt } from './peers/llama-cpp.js';

export interface RolloutShape {
  questions: number;
  generations: number;
  trajectories: number;
  rounds: number;
  promptTokens: number;
  roundTokens: number;
  progressTokens: number;
  seed: number;
}

export interface EngineRolloutResult {
  generatedTokens: number;
  seconds: number;
  tokensPerSecond: number;
  prefillTokens: number;
  prefillTokensPerSecond: number;
  prefixCacheHitRate: number;
  peakRssBytes: number;
}

export interface EngineDecodeResult {
  batch: number;
  generatedTokens: number;
  seconds: number;
  tokensPerSecond: number;
  peakRssBytes: number;
}

/** The model and how the child loads it (weights: LoadModelOptions.weights, default 'auto'). */
interface EngineOptions {
  model: string;
  threads: number;
  weights?: 'auto' | 'map' | 'read';
}

const RESULT_MARK = '@@motif-bench-result ';
const THIS_FILE = fileURLToPath(import.meta.url);

async function rolloutInProcess(o: EngineOptions & { kvCacheBytes: number } & RolloutShape) {
  const model = await loadModel(o.model, {
    device: 'cpu',
    threads: o.threads,
    kvCacheBytes: o.kvCacheBytes,
    tokenizer: false,
    weights: o.weights,
  });
  const vocab = model.config.vocabSize;
  const prompts = Array.from({ length: o.questions }, (_, q) => questionPrompt(o.seed, q, o.promptTokens, vocab));
  const sampling = { temperature: 0.8, topP: 0.95, maxTokens: o.roundTokens, stopTokens: [] as number[] };
  let generated = 0;
  let prefill = 0;
  let cached = 0;
  let prefillSeconds = 0;
  const started = performance.now();
  // chains[i] = { question, last completion tokens }
  let chains: Array<{ q: number; tokens: Int32Array }> = [];
  for (let round = 1; round <= o.rounds; round++) {
    let reqs: GenerateRequest[];
    let owners: number[];
    if (round === 1) {
      reqs = prompts.map((p, q) => ({ ...sampling, tokens: p, n: o.generations, seed: o.seed * 1000 + q }));
      owners = prompts.map((_, q) => q);
    } else {
      const n = round === 2 ? o.trajectories : 1;
      reqs = chains.map((c, i) => ({
        ...sampling,
        tokens: [...prompts[c.q], ...c.tokens.subarray(Math.max(0, c.tokens.length - o.progressTokens))],
        n,
        seed: o.seed * 1000 + round * 100003 + i,
      }));
      owners = chains.map((c) => c.q);
    }
    const results = await model.generate(reqs);
    const s = model.lastGenerateStats;
    if (s) {
      generated += s.generatedTokens;
      prefill += s.prefillTokens;
      cached += s.cachedTokens;
      prefillSeconds += s.prefillSeconds;
    }
    chains = results.flatMap((r, i) => r.completions.map((c) => ({ q: owners[i], tokens: c.tokens })));
  }
  const seconds = (performance.now() - started) / 1000;
  await model.dispose();
  return {
    generatedTokens: generated,
    seconds,
    tokensPerSecond: generated / seconds,
    prefillTokens: prefill,
    prefillTokensPerSecond: prefillSeconds > 0 ? prefill / prefillSeconds : 0,
    prefixCacheHitRate: cached / Math.max(1, cached + prefill),
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  } satisfies EngineRolloutResult;
}

async function decodeInProcess(o: EngineOptions & { batch: number; tokens: number; seed: number }) {
  const model = await loadModel(o.model, { device: 'cpu', threads: o.threads, tokenizer: false, weights: o.weights });
  const vocab = model.config.vocabSize;
  const reqs = Array.from({ length: o.batch }, (_, i) => ({
    tokens: questionPrompt(o.seed, i, 16, vocab),
    maxTokens: o.tokens,
    temperature: 0,
    stopTokens: [] as number[],
  }));
  await model.generate(reqs.map((r) => ({ ...r, maxTokens: 2 }))); // warm-up: page the weights in
  await model.generate(reqs);
  const s = model.lastGenerateStats;
  await model.dispose();
  // Decode-only time: total minus the steps that carried the prompts.
  const seconds = (s?.seconds ?? 0) - (s?.prefillSeconds ?? 0);
  const decoded = (s?.generatedTokens ?? 0) - o.batch; // the first token of each comes from the prompt step
  return {
    batch: o.batch,
    generatedTokens: decoded,
    seconds,
    tokensPerSecond: decoded / seconds,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  } satisfies EngineDecodeResult;
}

function runInChild<T>(kind: 'rollout' | 'decode', options: object): Promise<T> {
  const args = THIS_FILE.endsWith('.ts')
    ? ['--import', 'tsx', THIS_FILE, '--child', kind]
    : [THIS_FILE, '--child', kind];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: path.resolve(path.dirname(THIS_FILE), '..'),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
      if (code === 0 && line) resolve(JSON.parse(line.slice(RESULT_MARK.length)) as T);
      else
        reject(
          new Error(
            `motif-native bench child (${kind}) failed with exit code ${code}\n${stderr.trim().split('\n').slice(-12).join('\n')}`,
          ),
        );
    });
    child.stdin.end(JSON.stringify(options));
  });
}

/** The MOTIF rollout workload on this engine, in a child process. */
export function runMotifRollout(o: EngineOptions & { kvCacheBytes: number } & RolloutShape) {
  return runInChild<EngineRolloutResult>('rollout', o);
}

/** `batch` greedy sequences decoding `tokens` tokens each; decode steps only are timed. */
export function runMotifDecode(o: EngineOptions & { batch: number; tokens: number; seed: number }) {
  return runInChild<EngineDecodeResult>('decode', o);
}

if (process.argv[1] === THIS_FILE && process.argv[2] === '--child') {
  let input = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) input += chunk;
  const opts = JSON.parse(input);
  const result = process.argv[3] === 'decode' ? await decodeInProcess(opts) : await rolloutInProcess(opts);
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(result)}\n`);
  process.exit(0);
}
