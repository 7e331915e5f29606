/**
 * test/unit/torch-reference.test.ts — checks the independent PyTorch reference itself before the engine
 * is compared with it: runs `qwen2_ref.py self-test` (RoPE vs complex rotation, attention vs a loop,
 * the whole model vs plain-Python loops, GQA mapping, safetensors codecs, ...) and a make-model/forward
 * round trip through the TypeScript helpers.
 *
 * Run: node --import tsx --test test/unit/torch-reference.test.ts   (or `npm run test:ts`)
 * Needs /usr/bin/python3 with torch (apt-get install -y python3-torch). Without it the tests print one
 * line and skip, unless MOTIF_REQUIRE_TORCH=1, which turns the skip into a failure (CI sets it).
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  makeRandomModel,
  referenceLogits,
  relativeL2,
  runReference,
  torchAvailable,
  torchSkipReason,
} from '../helpers/torch-reference.js';

const requireTorch = process.env.MOTIF_REQUIRE_TORCH === '1';
const haveTorch = torchAvailable();
if (!haveTorch && !requireTorch) {
  console.log(`torch-reference: skipped, ${torchSkipReason()}`);
}
const skip = !haveTorch && !requireTorch ? torchSkipReason() : false;

describe('torch reference (test/reference/qwen2_ref.py)', { skip }, () => {
  test('torch is available', () => {
    assert.ok(haveTorch, `MOTIF_REQUIRE_TORCH=1 but ${torchSkipReason()}`);
  });

  test('self-test passes', { skip: !haveTorch }, async () => {
    const { stdout } = await runReference(['self-test']);
    assert.match(stdout, /(\d+)\/\1 self-checks passed/, stdout);
  });

  test('make-model + forward round trip through the helpers', { skip: !haveTorch }, async () => {
    const opts = {
      arch: 'qwen2',
      hidden: 48,
      intermediate: 80,
      layers: 2,
      heads: 6,
      kvHeads: 2,
      headDim: 10,
      vocab: 101,
      dtype: 'bf16',
      shards: 2,
      seed: 5,
    } as const;
    const dir = await makeRandomModel(opts);
    try {
      const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      assert.deepEqual(config.architectures, ['Qwen2ForCausalLM']);
      assert.equal(config.head_dim, 10);
      assert.equal(config.torch_dtype, 'bfloat16');
      const index = JSON.parse(await readFile(path.join(dir, 'model.safetensors.index.json'), 'utf8')) as {
        weight_map: Record<string, string>;
      };
      assert.equal(new Set(Object.values(index.weight_map)).size, 2);

      const seqs = [
        [1, 2, 3, 4, 5],
        [100, 0, 7],
      ];
      const logits = await referenceLogits(dir, seqs);
      assert.equal(logits.length, 8 * 101);
      assert.ok(logits.every(Number.isFinite), 'non-finite reference logits');

      // each sequence alone gives the same rows as the batch; f32 compute stays close to f64
      const alone = new Float32Array([
        ...(await referenceLogits(dir, [seqs[0]])),
        ...(await referenceLogits(dir, [seqs[1]])),
      ]);
      assert.equal(relativeL2(alone, logits), 0);
      const f32 = await referenceLogits(dir, seqs, { compute: 'f32' });
      const err = relativeL2(f32, logits);
      assert.ok(err > 0 && err < 1e-5, `f32 vs f64 reference: relative L2 ${err}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('reference errors carry the python stderr', { skip: !haveTorch }, async () => {
    await assert.rejects(referenceLogits(path.join('no', 'such', 'model'), [[1]]), /ENOENT|no such/i);
    await assert.rejects(
      runReference(['forward', '--model', '/nonexistent', '--tokens', 'x', '--seq-lens', '1', '--out', 'y']),
      /python stderr/,
    );
  });

  test('relativeL2', () => {
    const b = new Float32Array([3, 4]);
    assert.equal(relativeL2(b, b), 0);
    assert.ok(Math.abs(relativeL2(new Float32Array([3, 5]), b) - 0.2) < 1e-12);
    assert.throws(() => relativeL2(b, new Float32Array(3)), /lengths differ/);
  });
});
