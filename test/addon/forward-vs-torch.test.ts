/**
 * forward-vs-torch.test.ts — the engine's logits against an independent PyTorch implementation
 * of Qwen2 and Llama (test/reference/qwen2_ref.py, following transformers' semantics).
 *
 * Random models are generated in many shapes — GQA ratios 1, 2 and 7, tied and untied
 * embeddings, head_dim != hidden/heads, odd sizes, sharded weights, Llama biases, linear and
 * llama3 RoPE scaling — and in f32, bf16 and f16. Each is run on a batch of sequences of
 * different lengths. Tolerance, relative L2 error of the logits (||ours - ref|| / ||ref||):
 *   <= 1e-4 for f32 weights; <= 1e-3 for bf16/f16 weights (computed in f32 by both sides).
 * The reference widens the stored weights to float64, so the bound measures our f32 arithmetic.
 *
 * Needs Debian's python3-torch; without it the test prints why it skipped, unless
 * MOTIF_REQUIRE_TORCH=1 (set by .ci/run), which turns the skip into a failure.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel } from '../../lib/index.js';
import {
  makeRandomModel,
  type RandomModelOptions,
  referenceLogits,
  relativeL2,
  torchAvailable,
  torchSkipReason,
} from '../helpers/torch-reference.js';

const requireTorch = process.env.MOTIF_REQUIRE_TORCH === '1';
const haveTorch = torchAvailable();
if (!haveTorch) {
  if (requireTorch) throw new Error(`MOTIF_REQUIRE_TORCH=1 but ${torchSkipReason()}`);
  console.log(`# forward-vs-torch: skipped: ${torchSkipReason()}`);
}

interface Shape {
  name: string;
  opts: Omit<RandomModelOptions, 'dtype'>;
}

const SHAPES: Shape[] = [
  {
    name: 'qwen2 MHA (GQA 1), untied',
    opts: { arch: 'qwen2', hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 4, vocab: 101 },
  },
  {
    name: 'qwen2 GQA 2, tied',
    opts: { arch: 'qwen2', hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 151, tie: true },
  },
  {
    name: 'qwen2 GQA 7, odd sizes, 3 shards',
    opts: { arch: 'qwen2', hidden: 56, intermediate: 83, layers: 3, heads: 7, kvHeads: 1, vocab: 97, shards: 3 },
  },
  {
    name: 'llama head_dim != hidden/heads, biases',
    opts: {
      arch: 'llama',
      hidden: 48,
      intermediate: 72,
      layers: 2,
      heads: 4,
      kvHeads: 2,
      headDim: 20,
      vocab: 89,
      attentionBias: true,
      mlpBias: true,
    },
  },
  {
    name: 'llama linear rope scaling, theta 5e5',
    opts: {
      arch: 'llama',
      hidden: 32,
      intermediate: 40,
      layers: 2,
      heads: 2,
      kvHeads: 1,
      vocab: 67,
      ropeTheta: 500000,
      ropeScaling: { rope_type: 'linear', factor: 4 },
    },
  },
  {
    name: 'llama3 rope scaling, tied',
    opts: {
      arch: 'llama',
      hidden: 64,
      intermediate: 128,
      layers: 2,
      heads: 8,
      kvHeads: 2,
      vocab: 131,
      tie: true,
      ropeTheta: 500000,
      ropeScaling: {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 16,
      },
    },
  },
];

const DTYPES = ['f32', 'bf16', 'f16'] as const;
const TOLERANCE = { f32: 1e-4, bf16: 1e-3, f16: 1e-3 } as const;

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-vs-torch-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Three sequences of different lengths (37, 5 and 1 tokens) with ids spread over the vocab. */
function sequences(vocab: number, seed: number): number[][] {
  let s = seed;
  const next = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % vocab;
  };
  return [37, 5, 1].map((n) => Array.from({ length: n }, next));
}

describe('logits match the PyTorch reference', { skip: !haveTorch && torchSkipReason() }, () => {
  let seed = 1;
  for (const shape of SHAPES) {
    for (const dtype of DTYPES) {
      const caseSeed = seed++;
      it(`${shape.name}, ${dtype}`, async () => {
        const dir = await makeRandomModel({ ...shape.opts, dtype, seed: caseSeed }, path.join(tmp, `m${caseSeed}`));
        const seqs = sequences(shape.opts.vocab, caseSeed);
        const ref = await referenceLogits(dir, seqs);
        const model = await loadModel(dir, { device: 'cpu' });
        try {
          const ours = await model.forward(seqs);
          assert.equal(ours.length, ref.length);
          const err = relativeL2(ours, ref);
          assert.ok(err <= TOLERANCE[dtype], `relative L2 error ${err.toExponential(3)} > ${TOLERANCE[dtype]}`);
        } finally {
          await model.dispose();
        }
      });
    }
  }
});
