/**
 * prefix-cache-weights.test.ts — the prefix cache never reuses K/V computed under other weights:
 * after the adapter changes (tensors written, an optimizer step, a new adapter) or is switched off
 * and on, generate() gives exactly what a fresh model with those weights gives, and a prompt seen
 * under the old weights is not counted as cached. Reuse under unchanged weights still happens.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel, type Model } from '../../lib/index.js';
import { rng, writeTinyModel } from '../helpers/tiny-model.js';

const V = 53;
const PROMPT = Array.from({ length: 41 }, (_, i) => (i * 17 + 5) % V); // two full 16-token blocks + a tail
const LORA = { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'up_proj'] as const, rslora: false, seed: 3 };
let tmp: string;
let dir: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-pc-'));
  dir = await writeTinyModel(path.join(tmp, 'm'), { vocab: V });
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function greedy(model: Model): Promise<{ tokens: number[]; cached: number }> {
  const [r] = await model.generate([{ tokens: PROMPT, maxTokens: 12, temperature: 0, stopTokens: [] }]);
  return { tokens: [...r.completions[0].tokens], cached: model.lastGenerateStats?.cachedTokens ?? -1 };
}

function randomAdapter(tensors: Map<string, Float32Array>, seed: number): Map<string, Float32Array> {
  const rand = rng(seed);
  const out = new Map<string, Float32Array>();
  for (const [name, t] of tensors)
    out.set(
      name,
      t.map(() => (rand() * 2 - 1) * 0.5),
    );
  return out;
}

/** Greedy tokens of a freshly loaded model running `tensors` (or the base model when undefined). */
async function fresh(tensors: Map<string, Float32Array> | undefined): Promise<number[]> {
  const model = await loadModel(dir, { device: 'cpu', threads: 1 });
  try {
    if (tensors) {
      await model.createLora({ ...LORA, targets: [...LORA.targets] });
      await model.setAdapterTensors(tensors);
    }
    return (await greedy(model)).tokens;
  } finally {
    await model.dispose();
  }
}

describe('prefix cache and changing weights', () => {
  it('never serves K/V computed under other weights', async () => {
    const model = await loadModel(dir, { device: 'cpu', threads: 1 });
    try {
      await model.createLora({ ...LORA, targets: [...LORA.targets] });
      const w1 = randomAdapter(await model.getAdapterTensors(), 1);
      const w2 = randomAdapter(w1, 2);
      await model.setAdapterTensors(w1);
      const first = await greedy(model);
      assert.equal(first.cached, 0);
      const again = await greedy(model); // same weights: the prompt's full blocks are reused
      assert.equal(again.cached, 32);
      assert.deepEqual(again.tokens, first.tokens);

      await model.setAdapterTensors(w2);
      const afterWrite = await greedy(model);
      assert.equal(afterWrite.cached, 0, 'blocks from the old adapter must not be reused');
      const want2 = await fresh(w2);
      assert.notDeepEqual(want2, first.tokens, 'the two adapters must differ for this test to mean anything');
      assert.deepEqual(afterWrite.tokens, want2);

      model.setAdapterEnabled(false);
      const base = await greedy(model);
      assert.equal(base.cached, 0);
      assert.deepEqual(base.tokens, await fresh(undefined));
      model.setAdapterEnabled(true);
      const back = await greedy(model); // w2 again: its blocks are still cached and valid
      assert.equal(back.cached, 32);
      assert.deepEqual(back.tokens, want2);

      // An optimizer step changes the weights too.
      const batch = {
        promptIds: [PROMPT.slice(0, 8)],
        completionIds: [PROMPT.slice(8, 14)],
        rewards: [1],
        groupSize: 1,
        lossType: 'sft' as const,
        epsilon: 0.2,
        beta: 0,
        temperature: 1,
      };
      await model.lossAndGradients(batch, { accumulate: true });
      const { skipped } = await model.optimizerStep({
        lr: 0.05,
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
        weightDecay: 0,
        maxGradNorm: 0,
      });
      assert.equal(skipped, false);
      const stepped = await greedy(model);
      assert.equal(stepped.cached, 0, 'blocks from before the optimizer step must not be reused');
      assert.deepEqual(stepped.tokens, await fresh(await model.getAdapterTensors()));
    } finally {
      await model.dispose();
    }
  });
});
