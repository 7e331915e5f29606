/**
 * grpo-vs-torch.test.ts — the engine's LoRA-GRPO loss, log-probs and LoRA gradients against an
 * independent PyTorch autograd computation (test/reference/grpo_ref.py, float64).
 *
 * Covered: Qwen2 (GQA) and Llama (with biases) models; every loss type (GRPO's three and 'sft'); beta 0 and > 0 (KL to the
 * adapter-disabled model); temperature != 1; clipped tokens (old log-probs shifted so some ratios
 * leave [1 - eps, 1 + eps_high]); PEFT adapters with non-zero B (so A has gradients) loaded from
 * the PEFT files the reference wrote. Tolerance (f32 engine vs f64 reference): relative error of
 * the loss <= 1e-4; relative L2 error of every gradient tensor and of the log-probs <= 1e-4.
 * Also: an AdamW step moves the adapter exactly as PyTorch's AdamW formula does (checked on host).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel, type Model } from '../../lib/index.js';
import { loadAdapter } from '../../lib/train/peft.js';
import type { GrpoBatch } from '../../lib/train/types.js';
import {
  type GrpoReferenceBatch,
  makeAdapter,
  referenceLossGrads,
  referenceTestModels,
} from '../helpers/grpo-reference.js';
import { makeRandomModel, relativeL2, torchAvailable, torchSkipReason } from '../helpers/torch-reference.js';

const requireTorch = process.env.MOTIF_REQUIRE_TORCH === '1';
const haveTorch = torchAvailable();
if (!haveTorch && requireTorch) throw new Error(`MOTIF_REQUIRE_TORCH=1 but ${torchSkipReason()}`);
if (!haveTorch) console.log(`# grpo-vs-torch: skipped: ${torchSkipReason()}`);

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-grpo-torch-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const V = 61;
function lcg(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s;
  };
}

/** 2 groups x 3 completions of different lengths, prompts per group. */
function makeBatch(seed: number, over: Partial<GrpoReferenceBatch>): GrpoReferenceBatch {
  const r = lcg(seed);
  const seq = (n: number) => Array.from({ length: n }, () => r() % V);
  return {
    promptIds: [seq(7), seq(4)],
    completionIds: [seq(5), seq(3), seq(6), seq(2), seq(5), seq(4)],
    rewards: [1, 0, 2, 0.5, 0.5, 3],
    groupSize: 3,
    lossType: 'grpo',
    epsilon: 0.2,
    beta: 0,
    temperature: 1,
    ...over,
  };
}

function check(
  ours: { loss: number; grads: Map<string, Float32Array>; logps: Float32Array },
  ref: Awaited<ReturnType<typeof referenceLossGrads>>,
) {
  const lossErr = Math.abs(ours.loss - ref.loss) / Math.max(1e-8, Math.abs(ref.loss));
  assert.ok(lossErr <= 1e-4, `loss ${ours.loss} vs reference ${ref.loss} (relative error ${lossErr.toExponential(2)})`);
  const refLogps = Float32Array.from(ref.logps.flat());
  assert.ok(relativeL2(ours.logps, refLogps) <= 1e-4, `log-probs differ: ${relativeL2(ours.logps, refLogps)}`);
  assert.equal(ours.grads.size, ref.grads.size);
  for (const [name, g] of ref.grads) {
    const mine = ours.grads.get(name);
    assert.ok(mine, `missing gradient ${name}`);
    const err = relativeL2(mine, g);
    assert.ok(err <= 1e-4, `${name}: relative L2 error ${err.toExponential(2)}`);
  }
}

describe('LoRA-GRPO loss and gradients match PyTorch autograd', { skip: !haveTorch && torchSkipReason() }, () => {
  const models = referenceTestModels(V);
  for (const [name, spec] of models) {
    describe(name, () => {
      let model: Model;
      let modelDir: string;
      let adapterDir: string;
      before(async () => {
        modelDir = await makeRandomModel(spec, path.join(tmp, name.replace(/\W+/g, '-')));
        adapterDir = await makeAdapter(
          modelDir,
          { rank: 4, alpha: 8, seed: 5, bScale: 0.05 },
          path.join(tmp, `${name.replace(/\W+/g, '-')}-adapter`),
        );
        model = await loadModel(modelDir, { device: 'cpu', threads: 2 });
        await loadAdapter(model, adapterDir);
      });
      after(async () => {
        await model?.dispose();
      });

      const cases: Array<[string, Partial<GrpoReferenceBatch>]> = [
        ['grpo, beta 0', {}],
        ['bnpo, temperature 0.7', { lossType: 'bnpo', temperature: 0.7 }],
        ['dr_grpo, beta 0.04, max length 8', { lossType: 'dr_grpo', beta: 0.04, maxCompletionLength: 8 }],
        [
          'grpo, beta 0.1, scaleRewards batch, epsilonHigh 0.28',
          { beta: 0.1, scaleRewards: 'batch', epsilonHigh: 0.28 },
        ],
        ['sft (mean NLL of completion tokens)', { lossType: 'sft' }],
        [
          'sft, temperature 0.7, beta and epsilonHigh ignored',
          { lossType: 'sft', temperature: 0.7, beta: 0.1, epsilonHigh: 0.5 },
        ],
      ];
      for (const [label, over] of cases) {
        it(label, async () => {
          const batch = makeBatch(11, over);
          const ref = await referenceLossGrads(modelDir, adapterDir, batch);
          const ours = await model.lossAndGradients(batch as GrpoBatch);
          check(ours, ref);
        });
      }

      it('forward() and generate() apply the same adapter as the training pass', async () => {
        const batch = makeBatch(14, {});
        const ref = await referenceLossGrads(modelDir, adapterDir, batch);
        // Log-probs of the completion tokens from forward() logits (the inference path, with LoRA).
        const mine: number[] = [];
        for (let i = 0; i < batch.completionIds.length; i++) {
          const prompt = batch.promptIds[Math.floor(i / batch.groupSize)];
          const seq = [...prompt, ...batch.completionIds[i]];
          const logits = await model.forward(seq);
          for (let j = 0; j < batch.completionIds[i].length; j++) {
            const row = logits.subarray((prompt.length - 1 + j) * V, (prompt.length + j) * V);
            let mx = -Infinity;
            for (const x of row) mx = Math.max(mx, x);
            let sum = 0;
            for (const x of row) sum += Math.exp(x - mx);
            mine.push(row[batch.completionIds[i][j]] - mx - Math.log(sum));
          }
        }
        const err = relativeL2(Float32Array.from(mine), Float32Array.from(ref.logps.flat()));
        assert.ok(err <= 1e-4, `forward() log-probs with the adapter differ from PyTorch: ${err}`);
        // Greedy generation over the paged cache equals the argmax of forward() recomputes.
        const prompt = batch.promptIds[0];
        const [res] = await model.generate([{ tokens: prompt, maxTokens: 6, temperature: 0, stopTokens: [] }]);
        const seq = [...prompt];
        for (let j = 0; j < 6; j++) {
          const logits = await model.forward(seq);
          const row = logits.subarray((seq.length - 1) * V, seq.length * V);
          let best = 0;
          for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
          assert.equal(res.completions[0].tokens[j], best, `generated token ${j}`);
          seq.push(best);
        }
      });

      it('clipped tokens (old log-probs shifted by +-0.5)', async () => {
        const base = makeBatch(12, {});
        const current = await model.lossAndGradients(base as GrpoBatch);
        const flat = [...current.logps];
        let at = 0;
        const oldLogps = base.completionIds.map((c) => c.map((_, j) => flat[at++] + (j % 2 ? 0.5 : -0.5)));
        const batch = { ...base, oldLogps };
        const ref = await referenceLossGrads(modelDir, adapterDir, batch);
        const ours = await model.lossAndGradients(batch as GrpoBatch);
        assert.ok(ref.clipFraction > 0, 'the case must clip some tokens');
        assert.ok(
          Math.abs(ours.stats.clipFraction - ref.clipFraction) < 1e-9,
          `clip fraction ${ours.stats.clipFraction} vs ${ref.clipFraction}`,
        );
        check(ours, ref);
      });
    });
  }
});

describe('AdamW and accumulation', () => {
  it('accumulated gradients drive one AdamW step exactly as the formula says', async () => {
    const { writeTinyModel } = await import('../helpers/tiny-model.js');
    const dir = await writeTinyModel(path.join(tmp, 'tiny-adamw'), { vocab: V });
    const model = await loadModel(dir, { device: 'cpu', threads: 1 });
    try {
      await model.createLora({ rank: 2, alpha: 4, targets: ['q_proj', 'down_proj'], rslora: false, seed: 1 });
      const before = await model.getAdapterTensors();
      const batch = makeBatch(13, {}) as GrpoBatch;
      const a = await model.lossAndGradients(batch, { accumulate: true, scale: 0.5 });
      const b = await model.lossAndGradients(batch, { accumulate: true, scale: 0.5 });
      assert.equal(a.loss, b.loss);
      const opt = { lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 0 };
      const { gradNorm, skipped } = await model.optimizerStep(opt);
      assert.equal(skipped, false);
      const after = await model.getAdapterTensors();
      let sq = 0;
      for (const [name, p0] of before) {
        const g = a.grads.get(name) as Float32Array; // each call gave 0.5 x the gradient; two of them sum to 1 x
        const p1 = after.get(name) as Float32Array;
        for (let i = 0; i < p0.length; i++) {
          const gi = 2 * g[i];
          sq += gi * gi;
          // step 1: m = 0.1 g, v = 0.01 g^2, bias-corrected m^ = g, v^ = g^2
          const want = p0[i] * (1 - opt.lr * opt.weightDecay) - (opt.lr * gi) / (Math.abs(gi) + opt.eps);
          assert.ok(Math.abs(p1[i] - want) <= 1e-6 + 1e-5 * Math.abs(want), `${name}[${i}]: ${p1[i]} vs ${want}`);
        }
      }
      assert.ok(Math.abs(gradNorm - Math.sqrt(sq)) <= 1e-4 * Math.sqrt(sq));
      const state = await model.getOptimizerState();
      assert.equal(state.step, 1);
    } finally {
      await model.dispose();
    }
  });
});
