/**
 * generate.test.ts — the rollout engine through model.generate on the CPU.
 *
 * The reference for greedy decoding is independent of the engine's cache and scheduler: a full
 * forward recompute of the whole sequence (model.forward, no KV cache) and the argmax of its last
 * row, one token at a time. Sampled runs are checked for invariance: the same seeds give the same
 * tokens alone or batched, forked or not, preempted or not. Block refcounts must be 0 after every call.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type GenerateRequest, loadModel, type Model, MotifError } from '../../lib/index.js';
import { writeTinyModel } from '../helpers/tiny-model.js';

const V = 37;
let tmp: string;
let dir: string;
let model: Model;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-generate-'));
  dir = await writeTinyModel(path.join(tmp, 'm'), {
    layers: 2,
    hidden: 32,
    heads: 4,
    kvHeads: 2,
    intermediate: 48,
    vocab: V,
  });
  // A small step budget forces prompts to prefill in chunks while other sequences decode.
  model = await loadModel(dir, { device: 'cpu', threads: 2, kvBlockSize: 4, maxStepTokens: 12, kvCacheBytes: 1 << 20 });
});
after(async () => {
  await model.dispose();
  await rm(tmp, { recursive: true, force: true });
});

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Greedy continuation by full recompute: forward over the whole sequence each step. */
async function greedyByRecompute(
  m: Model,
  prompt: number[],
  n: number,
): Promise<{ tokens: number[]; logprobs: number[] }> {
  const seq = [...prompt];
  const tokens: number[] = [];
  const logprobs: number[] = [];
  for (let i = 0; i < n; i++) {
    const logits = await m.forward(seq);
    const row = logits.subarray((seq.length - 1) * V, seq.length * V);
    const t = argmax(row);
    let mx = -Infinity;
    for (const x of row) mx = Math.max(mx, x);
    let sum = 0;
    for (const x of row) sum += Math.exp(x - mx);
    logprobs.push(row[t] - mx - Math.log(sum));
    tokens.push(t);
    seq.push(t);
  }
  return { tokens, logprobs };
}

const prompts = [
  [1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4, 3],
  [7],
  [2, 7, 1, 8, 2, 8, 1, 8, 2, 8, 4, 5, 9],
  [3, 3, 3, 3, 3, 3, 3, 3, 3],
];

async function expectNoLeak(m: Model) {
  const s = await m.kvCacheStats();
  assert.equal(s.totalRefs, 0, 'every KV block must be released after the call');
}

describe('greedy generation equals full-recompute argmax', () => {
  it('one request at a time', async () => {
    for (const p of prompts) {
      const want = await greedyByRecompute(model, p, 10);
      const [res] = await model.generate([{ tokens: p, maxTokens: 10, temperature: 0, stopTokens: [] }]);
      assert.deepEqual([...res.completions[0].tokens], want.tokens);
      assert.equal(res.completions[0].finishReason, 'length');
      for (const [i, lp] of res.completions[0].logprobs.entries())
        assert.ok(Math.abs(lp - want.logprobs[i]) < 1e-4, `logprob ${i}`);
    }
    await expectNoLeak(model);
  });

  it('all requests batched, with n > 1 and requests joining mid-way', async () => {
    const reqs: GenerateRequest[] = prompts.map((p, i) => ({
      tokens: p,
      n: 1 + (i % 3),
      maxTokens: 8 + i,
      temperature: 0,
      stopTokens: [],
    }));
    const results = await model.generate(reqs);
    for (let i = 0; i < prompts.length; i++) {
      const want = await greedyByRecompute(model, prompts[i], 8 + i);
      assert.equal(results[i].completions.length, 1 + (i % 3));
      for (const c of results[i].completions) assert.deepEqual([...c.tokens], want.tokens, `request ${i}`);
    }
    const stats = model.lastGenerateStats;
    assert.ok(
      stats && stats.steps > 0 && stats.generatedTokens === reqs.reduce((n, r) => n + (r.n ?? 1) * r.maxTokens, 0),
    );
    await expectNoLeak(model);
  });
});

describe('sampling is invariant to batching, forking, prefix sharing and preemption', () => {
  const shared = [4, 4, 8, 1, 6, 2, 9, 9, 3, 0, 5, 7, 1, 1, 2, 6, 8, 3];
  const reqs: GenerateRequest[] = [
    { tokens: [...shared, 5, 6], n: 3, maxTokens: 12, temperature: 0.9, topP: 0.9, seed: 11, stopTokens: [] },
    { tokens: [...shared, 7], n: 2, maxTokens: 9, temperature: 1.2, topK: 5, seed: 12, stopTokens: [] },
    { tokens: [3, 1, 4], n: 1, maxTokens: 15, temperature: 0.7, minP: 0.05, seed: 13, stopTokens: [] },
  ];

  it('alone vs together, and forked (n) vs separate seeds per completion stream', async () => {
    const together = await model.generate(reqs);
    for (let i = 0; i < reqs.length; i++) {
      const [alone] = await model.generate([reqs[i]]);
      assert.deepEqual(
        alone.completions.map((c) => [...c.tokens]),
        together[i].completions.map((c) => [...c.tokens]),
      );
    }
    // The completions of one request differ from each other (different random streams).
    const first = together[0].completions.map((c) => c.tokens.join(','));
    assert.equal(new Set(first).size, first.length);
    await expectNoLeak(model);
  });

  it('a fresh model with an empty prefix cache gives the same tokens', async () => {
    const fresh = await loadModel(dir, {
      device: 'cpu',
      threads: 1,
      kvBlockSize: 4,
      maxStepTokens: 12,
      kvCacheBytes: 1 << 20,
    });
    try {
      const a = await model.generate(reqs);
      const b = await fresh.generate(reqs);
      assert.deepEqual(
        a.map((r) => r.completions.map((c) => [...c.tokens])),
        b.map((r) => r.completions.map((c) => [...c.tokens])),
      );
      // The second call on `model` found the shared prefix in its cache.
      assert.ok((model.lastGenerateStats?.cachedTokens ?? 0) > 0, 'expected prefix-cache hits');
    } finally {
      await fresh.dispose();
    }
  });

  it('a deliberately tiny KV pool preempts and still gives the same tokens', async () => {
    // 2 layers x 2 (k,v) x 4 tokens x 2 kv heads x 8 dims x 4 bytes = 1 KiB a block: 12 blocks.
    const tiny = await loadModel(dir, {
      device: 'cpu',
      threads: 2,
      kvBlockSize: 4,
      maxStepTokens: 12,
      kvCacheBytes: 12 * 1024,
    });
    try {
      const want = await model.generate(reqs);
      const got = await tiny.generate(reqs);
      assert.deepEqual(
        got.map((r) => r.completions.map((c) => [...c.tokens])),
        want.map((r) => r.completions.map((c) => [...c.tokens])),
      );
      assert.ok((tiny.lastGenerateStats?.preemptions ?? 0) > 0, 'expected preemptions with a 12-block pool');
      await expectNoLeak(tiny);
    } finally {
      await tiny.dispose();
    }
  });
});

describe('stopping, streaming, aborting', () => {
  it('a stop token ends the completion and is kept', async () => {
    const p = prompts[0];
    const [free] = await model.generate([{ tokens: p, maxTokens: 10, temperature: 0, stopTokens: [] }]);
    const stop = free.completions[0].tokens[3];
    const firstAt = [...free.completions[0].tokens].indexOf(stop);
    const [res] = await model.generate([{ tokens: p, maxTokens: 10, temperature: 0, stopTokens: [stop] }]);
    assert.equal(res.completions[0].finishReason, 'stop');
    assert.deepEqual([...res.completions[0].tokens], [...free.completions[0].tokens.subarray(0, firstAt + 1)]);
  });

  it('streams every token in order', async () => {
    const events: number[][] = [[], []];
    const stream = model.generateStream([
      { tokens: prompts[2], n: 2, maxTokens: 6, temperature: 0.8, seed: 3, stopTokens: [] },
    ]);
    let next = await stream.next();
    while (!next.done) {
      events[next.value.completion].push(next.value.token);
      next = await stream.next();
    }
    const results = next.value;
    assert.deepEqual(
      events,
      results[0].completions.map((c) => [...c.tokens]),
    );
  });

  it('an AbortSignal ends the call with finishReason abort and frees everything', async () => {
    const ac = new AbortController();
    ac.abort();
    const res = await model.generate([{ tokens: prompts[0], n: 2, maxTokens: 50, temperature: 0, stopTokens: [] }], {
      signal: ac.signal,
    });
    for (const c of res[0].completions) assert.equal(c.finishReason, 'abort');
    await expectNoLeak(model);
    const ac2 = new AbortController();
    let seen = 0;
    const res2 = await model.generate([{ tokens: prompts[1], maxTokens: 100, temperature: 0, stopTokens: [] }], {
      signal: ac2.signal,
      onToken: () => {
        if (++seen === 3) ac2.abort();
      },
    });
    assert.equal(res2[0].completions[0].finishReason, 'abort');
    assert.ok(res2[0].completions[0].tokens.length < 100);
    await expectNoLeak(model);
  });
});

describe('a throwing onToken callback', () => {
  it('rejects the call with that error and frees everything', async () => {
    const boom = new Error('callback failed');
    await assert.rejects(
      model.generate([{ tokens: prompts[1], maxTokens: 50, temperature: 0, stopTokens: [] }], {
        onToken: () => {
          throw boom;
        },
      }),
      (e: unknown) => e === boom,
    );
    await expectNoLeak(model);
  });
});

describe('bad requests are rejected clearly', () => {
  const bad: Array<[string, GenerateRequest, string]> = [
    ['empty prompt', { tokens: [], maxTokens: 4 }, 'prompt'],
    ['n < 1', { tokens: [1], n: 0, maxTokens: 4 }, 'requests[0].n'],
    ['negative temperature', { tokens: [1], maxTokens: 4, temperature: -1 }, 'temperature'],
    ['top-p of 0', { tokens: [1], maxTokens: 4, topP: 0 }, 'topP'],
    ['top-p above 1', { tokens: [1], maxTokens: 4, topP: 1.5 }, 'topP'],
    ['past max positions', { tokens: [1, 2], maxTokens: 127 }, 'max_position_embeddings'],
    ['token out of range', { tokens: [1, V], maxTokens: 4 }, `requests[0].tokens[1] = ${V}`],
    ['negative token', { tokens: [-3], maxTokens: 4 }, 'requests[0].tokens[0] = -3'],
    ['no prompt at all', { maxTokens: 4 } as GenerateRequest, 'exactly one of tokens'],
    ['text without a tokenizer', { text: 'hi', maxTokens: 4 }, 'tokenizer'],
  ];
  for (const [name, req, needle] of bad) {
    it(name, async () => {
      await assert.rejects(
        model.generate([req]),
        (e: unknown) => e instanceof MotifError && e.message.includes(needle),
      );
    });
  }
  it('a request that can never fit in the KV pool', async () => {
    const tiny = await loadModel(dir, { device: 'cpu', kvBlockSize: 4, kvCacheBytes: 4 * 1024 });
    try {
      await assert.rejects(
        tiny.generate([{ tokens: [1, 2, 3], maxTokens: 30 }]),
        (e: unknown) => e instanceof MotifError && /needs \d+ KV blocks but the cache holds 4/.test(e.message),
      );
    } finally {
      await tiny.dispose();
    }
  });
});
