/**
 * full-train.test.ts — full-parameter training on the engine (Model.enableFullTraining, sft --full).
 *
 * - The loss and the gradient of every weight (embedding, projections, biases, norm scales, the LM
 *   head, tied or not) match PyTorch autograd (test/reference/grpo_ref.py loss-grads --full, f64):
 *   relative L2 error <= 1e-4 per tensor, for 'sft' and 'grpo' on Qwen2 (GQA, q/k/v biases, untied
 *   head) and Llama (all biases, tied head).
 * - One AdamW step follows the formula, with weight decay on matrices only (not norms or biases).
 * - After a step, forward and generate use the new weights (no stale prefix-cache K/V), and
 *   saveModel writes a HuggingFace folder that loads back to the same logits, in the source dtype.
 * - Misuse is refused clearly; `motif-native sft --full` runs end to end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openSafetensorsModel } from '../../lib/formats/safetensors.js';
import { loadModel, type Model } from '../../lib/index.js';
import type { GrpoBatch } from '../../lib/train/types.js';
import { type GrpoReferenceBatch, referenceLossGrads, referenceTestModels } from '../helpers/grpo-reference.js';
import { writeTinyChatModel, writeTinyModel } from '../helpers/tiny-model.js';
import { makeRandomModel, relativeL2, torchAvailable, torchSkipReason } from '../helpers/torch-reference.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const requireTorch = process.env.MOTIF_REQUIRE_TORCH === '1';
const haveTorch = torchAvailable();
if (!haveTorch && requireTorch) throw new Error(`MOTIF_REQUIRE_TORCH=1 but ${torchSkipReason()}`);

const V = 53;
let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-full-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** 2 groups x 2 completions; token ids from a fixed LCG. */
function makeBatch(over: Partial<GrpoReferenceBatch>): GrpoReferenceBatch {
  let s = 7;
  const next = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % V;
  };
  const seq = (n: number) => Array.from({ length: n }, next);
  return {
    promptIds: [seq(6), seq(3)],
    completionIds: [seq(4), seq(2), seq(5), seq(3)],
    rewards: [1, 0, 0.25, 2],
    groupSize: 2,
    lossType: 'sft',
    epsilon: 0.2,
    beta: 0,
    temperature: 1,
    ...over,
  };
}

describe('full-parameter gradients match PyTorch autograd', { skip: !haveTorch && torchSkipReason() }, () => {
  // Llama with a tied head (the LM head's and the embedding's gradients add up), Qwen2 untied.
  const models = referenceTestModels(V).map(([name, spec]) =>
    spec.arch === 'llama'
      ? ([`${name}, tied head`, { ...spec, tie: true }] as const)
      : ([`${name}, untied head`, spec] as const),
  );
  for (const [name, spec] of models)
    for (const over of [{ lossType: 'sft' }, { lossType: 'grpo', temperature: 0.8 }] as const)
      it(`${name}: ${over.lossType}`, async () => {
        const dir = await makeRandomModel(spec, path.join(tmp, `${name.replace(/\W+/g, '-')}-${over.lossType}`));
        const batch = makeBatch(over);
        const ref = await referenceLossGrads(dir, null, batch);
        const model = await loadModel(dir, { device: 'cpu', threads: 2 });
        try {
          await model.enableFullTraining();
          const ours = await model.lossAndGradients(batch as GrpoBatch);
          // (grpo's loss is 0 at old = current log-probs: the advantages of a group sum to 0.)
          const lossErr = Math.abs(ours.loss - ref.loss) / Math.max(1, Math.abs(ref.loss));
          assert.ok(lossErr <= 1e-4, `loss ${ours.loss} vs ${ref.loss}`);
          const names = [...ours.grads.keys()];
          // Every tensor the engine reads is trained; the reference also lists nothing else.
          assert.deepEqual([...names].sort(), [...ref.grads.keys()].sort());
          for (const n of names) {
            const err = relativeL2(ours.grads.get(n) as Float32Array, ref.grads.get(n) as Float32Array);
            assert.ok(err <= 1e-4, `${n}: relative L2 error ${err.toExponential(2)}`);
          }
          assert.ok(names.some((n) => n.endsWith('_proj.bias')));
          assert.equal(names.includes('lm_head.weight'), spec.tie !== true);
        } finally {
          await model.dispose();
        }
      });
});

describe('full-parameter training on the engine', () => {
  let dir: string;
  let model: Model;
  before(async () => {
    dir = await writeTinyModel(path.join(tmp, 'tiny'), { vocab: V, seed: 3 });
    model = await loadModel(dir, { device: 'cpu', threads: 2 });
    await model.enableFullTraining();
  });
  after(async () => {
    await model?.dispose();
  });

  it('one AdamW step: decay on matrices only, and the model runs on the new weights', async () => {
    const before = await model.getFullTensors();
    const batch = makeBatch({}) as GrpoBatch;
    const prompt = batch.promptIds[0];
    const greedy = { tokens: prompt, maxTokens: 4, temperature: 0 };
    await model.generate([greedy]); // caches the prompt's K/V under the weights before the step
    const { grads } = await model.lossAndGradients(batch, { accumulate: true });
    const opt = { lr: 0.05, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.5, maxGradNorm: 0 };
    assert.equal((await model.optimizerStep(opt)).skipped, false);
    const after = await model.getFullTensors();
    for (const [name, { shape, data: p0 }] of before) {
      const g = grads.get(name) as Float32Array;
      const p1 = (after.get(name) as { data: Float32Array }).data;
      const decay = shape.length === 2 ? opt.weightDecay : 0;
      for (let i = 0; i < p0.length; i++) {
        // step 1: bias-corrected m^ = g, v^ = g^2
        const want = p0[i] * (1 - opt.lr * decay) - (opt.lr * g[i]) / (Math.abs(g[i]) + opt.eps);
        assert.ok(Math.abs(p1[i] - want) <= 1e-6 + 1e-5 * Math.abs(want), `${name}[${i}]: ${p1[i]} vs ${want}`);
      }
    }
    // Greedy generation after the step is the argmax of a full recompute under the new weights.
    const [res] = await model.generate([greedy]);
    const seq = [...prompt];
    for (const tok of res.completions[0].tokens) {
      const logits = await model.forward(seq);
      const last = logits.subarray((seq.length - 1) * V, seq.length * V);
      assert.equal(tok, last.indexOf(Math.max(...last)));
      seq.push(tok);
    }
  });

  it('saveModel writes a folder that loads back to the same logits', async () => {
    const out = path.join(tmp, 'saved');
    await model.saveModel(out);
    const back = await loadModel(out, { device: 'cpu', threads: 2 });
    try {
      const seq = [1, 5, 9, 2, 40];
      assert.ok(relativeL2(await back.forward(seq), await model.forward(seq)) <= 1e-7);
    } finally {
      await back.dispose();
    }
    await assert.rejects(model.saveModel(out), /already exists; choose a new folder or pass overwrite/);
    await assert.rejects(model.saveModel(dir, { overwrite: true }), /is the folder the model was loaded from/);
    await model.saveModel(out, { overwrite: true, dtype: 'bf16' });
    const st = await openSafetensorsModel(out);
    try {
      assert.ok([...st.tensors.values()].every((t) => t.dtype === 'BF16'));
    } finally {
      await st.close();
    }
  });

  it('refuses what it cannot do', async () => {
    await assert.rejects(
      model.createLora({ rank: 2, alpha: 4, targets: ['q_proj'], rslora: false, seed: 1 }),
      /full-parameter training is on/,
    );
    await assert.rejects(
      model.lossAndGradients(makeBatch({ lossType: 'grpo', beta: 0.1 }) as GrpoBatch),
      /beta > 0 needs the reference model's log-probs/,
    );
    const withAdapter = await loadModel(dir, { device: 'cpu', threads: 1 });
    try {
      await withAdapter.createLora({ rank: 2, alpha: 4, targets: ['q_proj'], rslora: false, seed: 1 });
      await assert.rejects(withAdapter.enableFullTraining(), /has a LoRA adapter/);
      await assert.rejects(withAdapter.saveModel(path.join(tmp, 'x')), /full-parameter training is not enabled/);
    } finally {
      await withAdapter.dispose();
    }
  });
});

describe('motif-native sft --full', () => {
  it('trains every weight and writes <out>/model in the checkpoint dtype', async () => {
    const dir = await writeTinyChatModel(path.join(tmp, 'qwen-tiny'));
    const rows = [
      { prompt: 'What is 2+3?', response: 'The answer is 5.' },
      { prompt: 'Name a color.', response: 'Blue.' },
      { prompt: 'Count to three.', response: '1, 2, 3' },
    ];
    const data = path.join(tmp, 'sft.jsonl');
    await writeFile(data, `${[...rows, ...rows, ...rows, ...rows].map((r) => JSON.stringify(r)).join('\n')}\n`);
    const out = path.join(tmp, 'sft-full');
    const cli = (args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'lib/cli/cli.ts'), 'sft', ...args], {
        encoding: 'utf8',
        cwd: ROOT,
      });
    const base = ['--model', dir, '--dataset', data, '--threads', '2'];
    const r = cli([...base, '--out', out, '--full', '--epochs', '4', '--lr', '0.003', '--batch-size', '3', '--quiet']);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /done: 16 steps on 12 examples/);
    assert.match(r.stdout, /model \(HuggingFace folder\): .*sft-full\/model/);
    const metrics = (await readFile(path.join(out, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { loss: number });
    assert.ok(
      metrics[metrics.length - 1].loss < 0.5 * metrics[0].loss,
      `loss ${metrics[0].loss} -> ${metrics[metrics.length - 1].loss}`,
    );
    // The written model is a loadable HF folder with the source's tokenizer, in the source's dtype (F32).
    const trained = await loadModel(path.join(out, 'model'), { device: 'cpu', threads: 2 });
    try {
      assert.ok(trained.tokenizer);
      assert.equal(trained.info.weightDtype, 'F32');
    } finally {
      await trained.dispose();
    }
    const bad = cli([...base, '--out', path.join(tmp, 'bad'), '--full', '--merge']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--merge folds a LoRA adapter into the model/);
  });
});
