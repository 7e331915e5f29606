/**
 * llama-cpp-peer.test.ts — smoke test of the rollout benchmark's llama.cpp peer (bench/peers/llama-cpp.ts)
 * on a tiny exported model with one question, so it stays fast: the workload's token counts, generation
 * to the budget past end-of-generation tokens, the prefix-reuse modes agreeing token for token under
 * greedy sampling, and batched decode. Timings are not checked (they are the benchmark's business).
 * Without node-llama-cpp's binary it prints one line saying why it skipped.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { questionPrompt, runLlamaCppDecode, runLlamaCppRollout } from '../../bench/peers/llama-cpp.js';
import { exportGguf } from '../../lib/export/exportGguf.js';
import { writeTinyModel } from '../helpers/tiny-model.js';

let skip: string | undefined;
try {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  await getLlama({
    gpu: false,
    build: 'never',
    skipDownload: true,
    logLevel: LlamaLogLevel.error,
    progressLogs: false,
  });
} catch (err) {
  skip = `node-llama-cpp cannot be loaded (${String((err as Error)?.message ?? err).split('\n')[0]})`;
  console.log(`# llama-cpp-peer: skipped: ${skip}`);
}

// A 16-token vocabulary: the placeholder tokenizer makes id 15 the EOS, so sampled runs hit it often.
const V = 16;
const EOS = V - 1;
let tmp: string;
let gguf: string;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-llama-peer-'));
  const dir = await writeTinyModel(path.join(tmp, 'm'), {
    arch: 'qwen2',
    hidden: 32,
    intermediate: 48,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    vocab: V,
    seed: 5,
  });
  gguf = path.join(tmp, 'm.gguf');
  await exportGguf({ modelDir: dir, outFile: gguf, dtype: 'f32' });
});

after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const shape = { questions: 1, generations: 2, trajectories: 2, rounds: 2, promptTokens: 12, roundTokens: 24, seed: 3 };

describe('llama.cpp peer', { skip }, () => {
  it('questionPrompt is a deterministic function of (seed, question)', () => {
    const a = questionPrompt(7, 0, 300, 151936);
    assert.deepEqual(a, questionPrompt(7, 0, 300, 151936));
    assert.notDeepEqual(a, questionPrompt(7, 1, 300, 151936));
    assert.notDeepEqual(a, questionPrompt(8, 0, 300, 151936));
    assert.ok(a.every((t) => Number.isInteger(t) && t >= 0 && t < 151936));
    assert.ok(new Set(a).size > 250);
  });

  it('runs the MOTIF-shaped workload to the token budget, through end-of-generation tokens', async () => {
    const r = await runLlamaCppRollout({ gguf, threads: 1, ...shape, temperature: 1, topP: 1, returnTokens: true });
    const { questions: Q, generations: m, trajectories: k, roundTokens: T, promptTokens: P } = shape;
    assert.equal(r.generatedTokens, Q * m * T * (1 + k));
    assert.equal(r.tokens?.length, 2);
    assert.equal(r.tokens?.[0].length, Q * m);
    assert.equal(r.tokens?.[1].length, Q * m * k);
    for (const round of r.tokens ?? []) for (const seq of round) assert.equal(seq.length, T);
    const all = (r.tokens ?? []).flat(2);
    assert.ok(all.every((t) => Number.isInteger(t) && t >= 0 && t < V));
    const eosMidway = (r.tokens ?? []).flat().some((seq) => seq.slice(0, -1).includes(EOS));
    assert.ok(eosMidway, 'some sequence sampled EOS and kept generating');
    // Prompts: round 1 is the question prompt; round 2 adds the previous round's last min(32, T) tokens.
    assert.equal(r.promptTokensTotal, Q * m * P + Q * m * k * (P + Math.min(32, T)));
    assert.ok(r.prefillTokens > 0 && r.prefillTokens < r.promptTokensTotal);
    assert.ok(Math.abs(r.prefixCacheHitRate - (1 - r.prefillTokens / r.promptTokensTotal)) < 1e-12);
    assert.ok(r.prefixCacheHitRate > 0 && r.prefixCacheHitRate < 1);
    assert.equal(r.prefixSharing, 'state-file');
    assert.equal(r.sequences, Q * m * k);
    assert.ok(r.seconds > 0 && r.tokensPerSecond > 0 && r.prefillTokensPerSecond > 0);
    assert.ok(r.peakRssBytes > 10 * 2 ** 20, `peak RSS ${r.peakRssBytes}`);
    assert.match(r.engine, /node-llama-cpp 3\.21\.1 .*UV_THREADPOOL_SIZE=1/);
  });

  it('state-file prefix sharing gives the same greedy tokens as recomputing every prompt', async () => {
    const opts = { gguf, threads: 1, ...shape, temperature: 0, returnTokens: true };
    const shared = await runLlamaCppRollout({ ...opts, prefixSharing: 'state-file' });
    const none = await runLlamaCppRollout({ ...opts, prefixSharing: 'none' });
    assert.equal(none.prefixCacheHitRate, 0);
    assert.equal(none.prefillTokens, none.promptTokensTotal);
    assert.ok(shared.prefillTokens < none.prefillTokens);
    assert.deepEqual(shared.tokens, none.tokens);
  });

  it('measures batched decode', async () => {
    const r = await runLlamaCppDecode({ gguf, threads: 1, batch: 2, tokens: 8 });
    assert.equal(r.batch, 2);
    assert.equal(r.generatedTokens, 16);
    assert.ok(r.tokensPerSecond > 0 && r.peakRssBytes > 0);
  });

  it('rejects bad options', async () => {
    await assert.rejects(runLlamaCppRollout({ gguf, threads: 0, ...shape }), /threads must be an integer ≥ 1/);
    await assert.rejects(
      runLlamaCppRollout({ gguf, threads: 1, ...shape, prefixSharing: 'magic' as never }),
      /prefixSharing must be/,
    );
  });
});
