/**
 * test/unit/grpo-reference.test.ts — checks the independent PyTorch training reference itself before the
 * engine's LoRA gradients are compared with it: runs `grpo_ref.py self-test` (B = 0 is the base model,
 * merged == unmerged, log-probs / advantages / loss by hand, gradients through merged weights, finite
 * differences for every loss type, zero gradient for equal rewards, ...) and a make-adapter / loss-grads
 * round trip through the TypeScript helpers.
 *
 * Run: node --import tsx --test test/unit/grpo-reference.test.ts   (or `npm run test:ts`)
 * Needs /usr/bin/python3 with torch (apt-get install -y python3-torch). Without it the tests print one
 * line and skip, unless MOTIF_REQUIRE_TORCH=1, which turns the skip into a failure (CI sets it).
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type GrpoReferenceBatch,
  makeAdapter,
  referenceLossGrads,
  runGrpoReference,
} from '../helpers/grpo-reference.js';
import { makeRandomModel, relativeL2, torchAvailable, torchSkipReason } from '../helpers/torch-reference.js';

const requireTorch = process.env.MOTIF_REQUIRE_TORCH === '1';
const haveTorch = torchAvailable();
if (!haveTorch && !requireTorch) {
  console.log(`grpo-reference: skipped, ${torchSkipReason()}`);
}
const skip = !haveTorch && !requireTorch ? torchSkipReason() : false;

const MODEL = {
  arch: 'qwen2',
  hidden: 32,
  intermediate: 48,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  vocab: 64,
  seed: 3,
} as const;
const BATCH: GrpoReferenceBatch = {
  promptIds: [
    [1, 2, 3],
    [40, 41],
  ],
  completionIds: [[4, 5, 6, 7], [8], [9, 10, 11], [12, 13]],
  rewards: [1, 0, 0.5, 2],
  groupSize: 2,
  lossType: 'bnpo',
  epsilon: 0.2,
  epsilonHigh: 0.28,
  beta: 0.04,
  temperature: 0.8,
};

/** PEFT name → [rows, cols] of every adapter tensor of the MODEL above with rank r on all seven projections. */
function expectedShapes(r: number): Map<string, [number, number]> {
  const { hidden: C, intermediate: I, heads: H, kvHeads: Hkv } = MODEL;
  const D = C / H;
  const io: Record<string, [string, number, number]> = {
    q_proj: ['self_attn', H * D, C],
    k_proj: ['self_attn', Hkv * D, C],
    v_proj: ['self_attn', Hkv * D, C],
    o_proj: ['self_attn', C, H * D],
    gate_proj: ['mlp', I, C],
    up_proj: ['mlp', I, C],
    down_proj: ['mlp', C, I],
  };
  const out = new Map<string, [number, number]>();
  for (let layer = 0; layer < MODEL.layers; layer++) {
    for (const [target, [sub, outF, inF]] of Object.entries(io)) {
      const p = `base_model.model.model.layers.${layer}.${sub}.${target}`;
      out.set(`${p}.lora_A.weight`, [r, inF]);
      out.set(`${p}.lora_B.weight`, [outF, r]);
    }
  }
  return out;
}

describe('GRPO training reference (test/reference/grpo_ref.py)', { skip }, () => {
  let modelDir = '';
  const made: string[] = [];

  before(async () => {
    if (haveTorch) {
      modelDir = await makeRandomModel(MODEL);
      made.push(modelDir);
    }
  });
  after(async () => {
    for (const dir of made) await rm(dir, { recursive: true, force: true });
  });

  test('torch is available', () => {
    assert.ok(haveTorch, `MOTIF_REQUIRE_TORCH=1 but ${torchSkipReason()}`);
  });

  test('self-test passes', { skip: !haveTorch }, async () => {
    const { stdout } = await runGrpoReference(['self-test']);
    assert.match(stdout, /(\d+)\/\1 self-checks passed/, stdout);
  });

  test('make-adapter writes a PEFT folder', { skip: !haveTorch }, async () => {
    const dir = await makeAdapter(modelDir, { rank: 4, alpha: 16, rslora: true, targets: ['v_proj', 'q_proj'] });
    made.push(dir);
    const config = JSON.parse(await readFile(path.join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config.peft_type, 'LORA');
    assert.equal(config.task_type, 'CAUSAL_LM');
    assert.equal(config.r, 4);
    assert.equal(config.lora_alpha, 16);
    assert.equal(config.use_rslora, true);
    assert.equal(config.lora_dropout, 0);
    assert.equal(config.bias, 'none');
    assert.equal(config.base_model_name_or_path, modelDir);
    assert.deepEqual(config.target_modules, ['q_proj', 'v_proj']);
    const raw = await readFile(path.join(dir, 'adapter_model.safetensors'));
    const header = JSON.parse(raw.subarray(8, 8 + Number(raw.readBigUInt64LE(0))).toString('utf8')) as Record<
      string,
      { dtype: string; shape: number[] }
    >;
    const names = Object.keys(header).filter((n) => n !== '__metadata__');
    assert.equal(names.length, 2 * 2 * MODEL.layers);
    const shapes = expectedShapes(4);
    for (const name of names) {
      assert.equal(header[name].dtype, 'F32');
      assert.deepEqual(header[name].shape, shapes.get(name), name);
    }
  });

  test('loss-grads round trip through the helpers', { skip: !haveTorch }, async () => {
    const adapter = await makeAdapter(modelDir, { rank: 4, alpha: 8, seed: 1, bScale: 0.2 });
    made.push(adapter);
    const ref = await referenceLossGrads(modelDir, adapter, BATCH);
    const shapes = expectedShapes(4);
    assert.deepEqual([...ref.grads.keys()], [...shapes.keys()].sort());
    for (const [name, g] of ref.grads) {
      const [rows, cols] = shapes.get(name)!;
      assert.equal(g.length, rows * cols, name);
      assert.ok(g.every(Number.isFinite), `${name}: non-finite gradient`);
      assert.ok(
        g.some((x) => x !== 0),
        `${name}: all-zero gradient`,
      );
    }
    assert.ok(Number.isFinite(ref.loss));
    assert.deepEqual(
      ref.logps.map((l) => l.length),
      [4, 1, 3, 2],
    );
    assert.ok(ref.logps.flat().every((x) => x < 0));
    assert.equal(ref.advantages.length, 4);
    assert.ok(Math.abs(ref.advantages[0] + ref.advantages[1]) < 1e-12, 'group advantages sum to zero');
    assert.equal(ref.clipFraction, 0, 'no oldLogps: ratio 1, nothing clipped');
    assert.ok(ref.kl > 0);

    // f32 compute stays close to f64
    const f32 = await referenceLossGrads(modelDir, adapter, BATCH, { dtype: 'f32' });
    const flat = (m: Map<string, Float32Array>) => Float32Array.from([...m.values()].flatMap((g) => [...g]));
    const err = relativeL2(flat(f32.grads), flat(ref.grads));
    assert.ok(err > 0 && err < 1e-4, `f32 vs f64 gradients: relative L2 ${err}`);

    // sampling log-probs away from the current ones clip some tokens
    const oldLogps = ref.logps.map((row, i) => row.map((x, t) => x + ((i + t) % 2 === 0 ? 0.5 : -0.5)));
    const clipped = await referenceLossGrads(modelDir, adapter, { ...BATCH, oldLogps, lossType: 'dr_grpo' });
    assert.ok(clipped.clipFraction > 0 && clipped.clipFraction < 1, `clipFraction ${clipped.clipFraction}`);
  });

  test("PEFT's B = 0 init: A gets no gradient, B does", { skip: !haveTorch }, async () => {
    const adapter = await makeAdapter(modelDir, { rank: 2, alpha: 4, seed: 2 });
    made.push(adapter);
    const ref = await referenceLossGrads(modelDir, adapter, { ...BATCH, beta: 0, lossType: 'grpo' });
    for (const [name, g] of ref.grads) {
      if (name.includes('lora_A'))
        assert.ok(
          g.every((x) => x === 0),
          `${name} should be zero`,
        );
      else
        assert.ok(
          g.some((x) => x !== 0),
          `${name} should not be zero`,
        );
    }
    assert.equal(ref.kl, 0);
  });

  test('reference errors carry the python stderr', { skip: !haveTorch }, async () => {
    const adapter = await makeAdapter(modelDir, { rank: 2, alpha: 2 });
    made.push(adapter);
    await assert.rejects(
      referenceLossGrads(modelDir, adapter, { ...BATCH, groupSize: 3 }),
      /python stderr[\s\S]*groupSize/,
    );
    await assert.rejects(makeAdapter(modelDir, { rank: 2, alpha: 2, targets: ['lm_head' as 'q_proj'] }), /--targets/);
  });
});
