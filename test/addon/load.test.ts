/**
 * load.test.ts — bounded memory under load, on the real engine (CPU).
 *
 * 1. Thousands of generate requests (mixed prompt lengths, n 1–4, mixed maxTokens) come from several
 *    async callers at once into one model with a deliberately small KV pool, so sequences are
 *    preempted and recomputed all the time. Calls queue on the model's lock; inside a call the
 *    engine batches its requests continuously. Every request must complete with the tokens it asked
 *    for (or a stop/length reason), a request that can never fit must be rejected with the "needs N KV
 *    blocks" error, the pool's refcounts must be 0 between calls and at the end, and resident memory
 *    sampled during the run must stay under (RSS before the model was loaded) + kvCacheBytes + the
 *    model's weights + a stated overhead, and must not creep upward over the run.
 * 2. A training loop (lossAndGradients + optimizerStep with LoRA, 30 steps) keeps its resident memory
 *    flat after warm-up.
 *
 * The figures are printed (LOAD: ... lines) for bench/RELIABILITY.md.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { type GenerateRequest, loadModel, MotifError } from '../../lib/index.js';
import type { GrpoBatch } from '../../lib/train/types.js';
import { rng, writeTinyModel } from '../helpers/tiny-model.js';

const MiB = 1024 * 1024;
/** What the process may add beyond the KV pool and the weights: V8 heap churn of thousands of results, thread stacks, allocator slack. */
const OVERHEAD_BYTES = 64 * MiB;
/** How much RSS after GC late in the run may exceed RSS after GC early in it (a leak of 1 KiB a request would add ~2.7 MiB). */
const CREEP_BYTES = 4 * MiB;
/** How much RSS may grow over 25 training steps after warm-up. */
const TRAIN_GROWTH_BYTES = 4 * MiB;

/** Under AddressSanitizer (scripts/ci-hardening.sh preloads it) RSS holds shadow memory and freed-block quarantine. */
const UNDER_ASAN = (process.env.LD_PRELOAD ?? '').includes('asan');

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-load-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('generate under load with a small KV pool', () => {
  it('serves thousands of requests from concurrent callers, frees every block, keeps RSS bounded', async () => {
    // L=2, kvHeads=2, headDim=8, block 4 tokens -> 2*2*4*2*8*4 = 1 KiB a block; 24 blocks = 96 tokens.
    const V = 61;
    const dir = await writeTinyModel(path.join(tmp, 'gen'), {
      layers: 2,
      hidden: 32,
      heads: 4,
      kvHeads: 2,
      intermediate: 48,
      vocab: V,
      seed: 11,
    });
    const modelBytes = (await stat(path.join(dir, 'model.safetensors'))).size;
    const blockBytes = 2 * 2 * 4 * 2 * 8 * 4;
    const poolBlocks = 24;
    const kvCacheBytes = poolBlocks * blockBytes;

    gc();
    const rssBeforeLoad = process.memoryUsage().rss;
    const model = await loadModel(dir, { device: 'cpu', threads: 1, kvBlockSize: 4, maxStepTokens: 32, kvCacheBytes });
    try {
      const rand = rng(2026);
      const pick = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
      const CALLERS = 4;
      const CALLS_PER_CALLER = 400;
      const NEVER_FIT_EVERY = 40; // every 40th call of a caller carries one request that can never fit
      let served = 0;
      let completions = 0;
      let rejectedNeverFit = 0;
      let generatedTokens = 0;
      let preemptions = 0;
      const rss: number[] = [];
      const settled: number[] = []; // RSS after a full GC, every 10th call of caller 0
      const sampler = setInterval(() => rss.push(process.memoryUsage().rss), 5);

      const caller = async (id: number) => {
        for (let call = 0; call < CALLS_PER_CALLER; call++) {
          const reqs: GenerateRequest[] = [];
          const k = pick(1, 6);
          for (let r = 0; r < k; r++) {
            const promptLen = pick(1, 40);
            reqs.push({
              tokens: Array.from({ length: promptLen }, () => pick(0, V - 1)),
              n: pick(1, 4),
              maxTokens: pick(1, 40),
              temperature: rand() < 0.3 ? 0 : 1,
              seed: pick(0, 1e6),
              stopTokens: rand() < 0.3 ? [pick(0, V - 1)] : [],
            });
          }
          const neverFit = call % NEVER_FIT_EVERY === NEVER_FIT_EVERY - 1;
          if (neverFit) reqs.splice(pick(0, reqs.length), 0, { tokens: new Array(60).fill(id), maxTokens: 50 });
          if (neverFit) {
            await assert.rejects(
              model.generate(reqs),
              (e: unknown) =>
                e instanceof MotifError &&
                /a completion of 110 tokens needs 28 KV blocks but the cache holds 24/.test(e.message),
            );
            rejectedNeverFit++;
          } else {
            const res = await model.generate(reqs);
            assert.equal(res.length, reqs.length);
            for (let r = 0; r < reqs.length; r++) {
              const want = reqs[r];
              assert.equal(res[r].completions.length, want.n);
              for (const c of res[r].completions) {
                assert.ok(c.tokens.length >= 1 && c.tokens.length <= want.maxTokens);
                assert.equal(c.logprobs.length, c.tokens.length);
                if (c.finishReason === 'length') assert.equal(c.tokens.length, want.maxTokens);
                else {
                  assert.equal(c.finishReason, 'stop', `request ${r}: unexpected finish reason ${c.finishReason}`);
                  assert.ok(want.stopTokens?.includes(c.tokens[c.tokens.length - 1]));
                }
                for (const t of c.tokens) assert.ok(t >= 0 && t < V);
                generatedTokens += c.tokens.length;
                completions++;
              }
            }
            served += reqs.length;
            preemptions += model.lastGenerateStats?.preemptions ?? 0;
          }
          if (call % 10 === 0) {
            // queued behind the other callers' calls: the pool is idle between calls
            const s = await model.kvCacheStats();
            assert.equal(s.totalRefs, 0, 'KV refcounts must be 0 between calls');
            if (id === 0) {
              gc();
              settled.push(process.memoryUsage().rss);
            }
          }
        }
      };
      await Promise.all(Array.from({ length: CALLERS }, (_, i) => caller(i)));
      clearInterval(sampler);

      const s = await model.kvCacheStats();
      assert.equal(s.totalRefs, 0, 'every KV block must be released after the load');
      assert.equal(
        s.blocks,
        poolBlocks,
        'the pool (created by the first call) must hold the configured number of blocks',
      );
      assert.equal(s.bytes, kvCacheBytes);
      assert.equal(s.availableBlocks, poolBlocks, 'every block must be free (or cached) again');
      assert.equal(rejectedNeverFit, CALLERS * Math.floor(CALLS_PER_CALLER / NEVER_FIT_EVERY));
      assert.ok(served >= 1000, `served only ${served} requests`);
      assert.ok(preemptions > 0, 'the pool was meant to be small enough to force preemption');

      const peak = Math.max(...rss);
      const bound = rssBeforeLoad + kvCacheBytes + modelBytes + OVERHEAD_BYTES;
      // creep: RSS after GC in the last quarter of the run against the second quarter (the first is warm-up)
      const q = Math.floor(settled.length / 4);
      const earlySettled = Math.max(...settled.slice(q, 2 * q));
      const lateSettled = Math.max(...settled.slice(3 * q));
      console.log(
        `LOAD: ${served} requests served (${completions} completions, ${generatedTokens} tokens), ` +
          `${rejectedNeverFit} never-fit requests rejected, ${preemptions} preemptions, pool ${poolBlocks} blocks = ${kvCacheBytes} B, ` +
          `RSS before load ${(rssBeforeLoad / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB ` +
          `(bound ${(bound / MiB).toFixed(1)} MiB, ${rss.length} samples); after GC: 2nd quarter ` +
          `${(earlySettled / MiB).toFixed(1)} MiB, last quarter ${(lateSettled / MiB).toFixed(1)} MiB`,
      );
      if (UNDER_ASAN) return; // the memory bounds are for a plain build; leaks are ASan's to find here
      assert.ok(rss.length >= 10, 'too few RSS samples to judge');
      assert.ok(peak <= bound, `peak RSS ${peak} exceeds ${bound}`);
      assert.ok(
        lateSettled <= earlySettled + CREEP_BYTES,
        `RSS after GC crept from ${earlySettled} to ${lateSettled} over the run`,
      );
    } finally {
      await model.dispose();
    }
  });
});

describe('training memory', () => {
  it('lossAndGradients + optimizerStep with LoRA keep RSS flat over 30 steps', async () => {
    const V = 257;
    const dir = await writeTinyModel(path.join(tmp, 'train'), {
      layers: 3,
      hidden: 64,
      heads: 4,
      kvHeads: 2,
      intermediate: 128,
      vocab: V,
      seed: 5,
    });
    const model = await loadModel(dir, { device: 'cpu', threads: 1, kvCacheBytes: 1 * MiB });
    try {
      await model.createLora({ rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: false, seed: 3 });
      const rand = rng(9);
      const seq = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * V));
      const opt = { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };
      const samples: number[] = [];
      const WARMUP = 5;
      for (let step = 0; step < 30; step++) {
        // a fresh batch each step (varying lengths), as a real run has
        const batch: GrpoBatch = {
          promptIds: [seq(20 + (step % 5)), seq(12)],
          completionIds: [seq(30), seq(9 + (step % 7)), seq(25), seq(4), seq(18), seq(33 - (step % 3))],
          rewards: [1, 0, 2, 0.5, 0.5, 3],
          groupSize: 3,
          lossType: 'grpo',
          epsilon: 0.2,
          beta: 0,
          temperature: 1,
        };
        const r = await model.lossAndGradients(batch, { accumulate: true });
        assert.ok(Number.isFinite(r.loss));
        const { skipped } = await model.optimizerStep(opt);
        assert.equal(skipped, false);
        gc();
        samples.push(process.memoryUsage().rss);
      }
      const base = samples[WARMUP - 1];
      const peak = Math.max(...samples.slice(WARMUP));
      console.log(
        `LOAD: training RSS after warm-up ${(base / MiB).toFixed(2)} MiB, peak over steps ${WARMUP + 1}-30 ` +
          `${(peak / MiB).toFixed(2)} MiB (growth ${((peak - base) / MiB).toFixed(2)} MiB, bound ${TRAIN_GROWTH_BYTES / MiB} MiB)`,
      );
      if (!UNDER_ASAN)
        assert.ok(peak - base <= TRAIN_GROWTH_BYTES, `training RSS grew by ${peak - base} bytes after warm-up`);
    } finally {
      await model.dispose();
    }
  });
});
