/**
 * forward.test.ts — the forward pass through the Node API on the CPU: shapes, batching,
 * determinism, concurrency, and the event loop staying free during native work.
 * (Numerical agreement with PyTorch is in forward-vs-torch.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { buildInfo, loadModel, type Model } from '../../lib/index.js';
import { writeTinyModel } from '../helpers/tiny-model.js';

let tmp: string;
let model: Model;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-forward-'));
  model = await loadModel(await writeTinyModel(path.join(tmp, 'm'), { layers: 3 }), { device: 'cpu', threads: 2 });
});
after(async () => {
  await model.dispose();
  await rm(tmp, { recursive: true, force: true });
});

it('reports the config and where it runs', () => {
  assert.equal(model.config.architecture, 'Qwen2ForCausalLM');
  assert.equal(model.config.vocabSize, 37);
  assert.equal(model.config.headDim, 4);
  assert.equal(model.info.backend, 'cpu');
  assert.equal(model.info.weightDtype, 'F32');
  assert.ok(buildInfo().backends.includes('cpu'));
});

it('returns [tokens x vocab] finite logits', async () => {
  const logits = await model.forward([3, 1, 4, 1, 5]);
  assert.equal(logits.length, 5 * 37);
  assert.ok(logits.every(Number.isFinite));
});

it('a batch of sequences equals each sequence alone', async () => {
  const seqs = [[3, 1, 4, 1, 5, 9, 2], [6], [5, 3, 5, 8]];
  const batch = await model.forward(seqs);
  let row = 0;
  for (const s of seqs) {
    const single = await model.forward(s);
    const part = batch.subarray(row * 37, (row + s.length) * 37);
    let maxDiff = 0;
    for (let i = 0; i < single.length; i++) maxDiff = Math.max(maxDiff, Math.abs(single[i] - part[i]));
    assert.ok(maxDiff < 1e-5, `sequence of ${s.length} differs by ${maxDiff}`);
    row += s.length;
  }
});

it('a causal model: logits of a prefix do not depend on what follows', async () => {
  const a = await model.forward([7, 8, 9]);
  const b = await model.forward([7, 8, 9, 10, 11]);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5);
});

it('concurrent calls queue and all resolve with the same answer', async () => {
  const results = await Promise.all(Array.from({ length: 6 }, () => model.forward(new Int32Array([2, 7, 1, 8]))));
  for (const r of results) assert.deepEqual(r, results[0]);
});

it('does not block the event loop while native work runs', async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  const long = Array.from({ length: 120 }, (_, i) => i % 37);
  await Promise.all(Array.from({ length: 20 }, () => model.forward(long)));
  clearInterval(timer);
  assert.ok(ticks > 0, 'the event loop should have run timers during the forward calls');
});

it('weights mapped or read into memory give the same logits; auto reads on the CPU', async () => {
  const dir = path.join(tmp, 'm');
  const seq = [3, 1, 4, 1, 5, 9, 2, 6];
  const want = await model.forward(seq);
  assert.equal(model.info.weightStorage, 'read');
  for (const weights of ['map', 'read'] as const) {
    const m = await loadModel(dir, { device: 'cpu', threads: 1, weights });
    try {
      assert.equal(m.info.weightStorage, weights);
      assert.deepEqual(await m.forward(seq), want);
    } finally {
      await m.dispose();
    }
  }
});
