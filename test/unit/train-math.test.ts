// The trainer's arithmetic against values worked out by hand: TRL's group-relative advantages
// ((r - mean) / (std + 1e-4), unbiased std; group / batch / none scaling; constant groups) and
// transformers' cosine schedule with warmup (warmup = ceil(total x ratio), lr 0 at the first update).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { groupAdvantages, unbiasedStd } from '../../lib/train/advantages.js';
import { resolveTrainConfig } from '../../lib/train/config.js';
import { DataOrder, SeedRng } from '../../lib/train/rng.js';
import { cosineFactor, cosineWithWarmup, warmupStepsFor } from '../../lib/train/schedule.js';

function close(a: number, b: number, tol = 1e-12): void {
  assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);
}

describe('group-relative advantages (TRL)', () => {
  it('one group: (r - mean) / (unbiased std + 1e-4)', () => {
    // rewards 1, 2, 3, 6: mean 3, deviations -2 -1 0 3, unbiased var 14/3, std 2.16024689947.
    const a = groupAdvantages([1, 2, 3, 6], 4, 'group');
    const want = [-0.9257772446135025, -0.46288862230675126, 0, 1.3886658669202538];
    for (const [i, x] of a.advantages.entries()) close(x, want[i] as number);
    close(a.groupMean[0] as number, 3);
    close(a.groupStd[0] as number, 2.160246899469287);
    assert.deepEqual(a.constant, [false]);
  });

  it('two groups, scaled by group, batch or not at all; a constant group has zero advantages', () => {
    const r = [0, 0, 0, 0, 1, 1, 3, 3];
    const g = groupAdvantages(r, 4, 'group');
    // group 2: mean 2, deviations -1 -1 1 1, unbiased std sqrt(4/3) = 1.1547005: 1 / (1.1547005 + 1e-4) = 0.86595041
    for (const [i, w] of [
      0, 0, 0, 0, -0.8659504102790668, -0.8659504102790668, 0.8659504102790668, 0.8659504102790668,
    ].entries())
      close(g.advantages[i] as number, w);
    assert.deepEqual(g.constant, [true, false]);
    const b = groupAdvantages(r, 4, 'batch');
    // batch std over all 8 rewards: mean 1, squares 4 x 1 + 2 x 4 = 12, / 7, sqrt = 1.30930734
    for (const [i, w] of [
      0, 0, 0, 0, -0.7637042869475817, -0.7637042869475817, 0.7637042869475817, 0.7637042869475817,
    ].entries())
      close(b.advantages[i] as number, w);
    const n = groupAdvantages(r, 4, 'none');
    assert.deepEqual(n.advantages, [0, 0, 0, 0, -1, -1, 1, 1]);
  });

  it('rejects groups that do not fit and single-sample groups', () => {
    assert.throws(() => groupAdvantages([1, 2, 3], 2), /do not make groups of 2/);
    assert.throws(() => groupAdvantages([1, 2], 1), /groupSize must be an integer >= 2/);
    assert.throws(() => groupAdvantages([1, 2], 2, 'bogus' as 'group'), /scale must be/);
    assert.ok(Number.isNaN(unbiasedStd([5])));
  });
});

describe('cosine schedule with warmup (transformers)', () => {
  it('10 steps, warmup ratio 0.1: 1 warmup step, lr 0 first, cosine to 0', () => {
    const s = cosineWithWarmup({ lr: 1e-3, totalSteps: 10, warmupRatio: 0.1 });
    assert.equal(s.warmupSteps, 1);
    assert.equal(s.lrAt(0), 0);
    close(s.lrAt(1), 1e-3);
    // step 5: progress (5 - 1) / 9, factor 0.5 (1 + cos(4 pi / 9)) = 0.58682408883
    close(s.lrAt(5), 1e-3 * 0.5868240888334653, 1e-18);
    close(s.lrAt(10), 0);
  });

  it('warmup length is ceil(total x ratio); warmup is linear', () => {
    assert.equal(warmupStepsFor(10, 0.25), 3);
    assert.equal(warmupStepsFor(1000, 0.1), 100);
    assert.equal(warmupStepsFor(7, 0), 0);
    const s = cosineWithWarmup({ lr: 3, totalSteps: 10, warmupRatio: 0.25 });
    close(s.lrAt(1), 1);
    close(s.lrAt(2), 2);
    close(s.lrAt(3), 3);
    // 10 steps, 2 warmup: step 4 is progress 2/8, factor 0.5 (1 + cos(pi / 4)) = 0.85355339
    close(cosineFactor(4, 2, 10), 0.8535533905932737);
  });

  it('rejects bad settings', () => {
    assert.throws(() => cosineWithWarmup({ lr: 1, totalSteps: 0 }), /totalSteps/);
    assert.throws(() => cosineWithWarmup({ lr: -1, totalSteps: 5 }), /lr must be/);
    assert.throws(() => cosineWithWarmup({ lr: 1, totalSteps: 5, warmupRatio: 2 }), /warmupRatio/);
  });
});

describe('seeded state', () => {
  it('the RNG continues the same sequence from a saved state', () => {
    const a = new SeedRng(123);
    a.nextSeed();
    const saved = a.state;
    const next = [a.nextSeed(), a.nextSeed()];
    const b = new SeedRng(0);
    b.state = saved;
    assert.deepEqual([b.nextSeed(), b.nextSeed()], next);
    assert.ok(next.every((x) => Number.isSafeInteger(x) && x >= 0));
  });

  it('the data order is a permutation per epoch, fixed by the seed', () => {
    const o = new DataOrder(5, 9);
    const e0 = [0, 1, 2, 3, 4].map((c) => o.at(c).index);
    const e1 = [5, 6, 7, 8, 9].map((c) => o.at(c).index);
    assert.deepEqual([...e0].sort(), [0, 1, 2, 3, 4]);
    assert.deepEqual([...e1].sort(), [0, 1, 2, 3, 4]);
    assert.notDeepEqual(e0, e1);
    const again = new DataOrder(5, 9);
    assert.deepEqual(
      [7, 2].map((c) => again.at(c).index),
      [e1[2], e0[2]],
    );
  });
});

describe('training settings', () => {
  it("defaults are the paper's", () => {
    const c = resolveTrainConfig();
    assert.equal(c.numGenerations, 8);
    assert.equal(c.trajectories, 4);
    assert.equal(c.rounds, 3);
    assert.deepEqual(c.lora, {
      rank: 64,
      alpha: 64,
      targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      rslora: false,
    });
    assert.equal(c.beta, 0);
    assert.equal(c.lr, 5e-6);
    assert.deepEqual([c.beta1, c.beta2, c.weightDecay, c.warmupRatio, c.maxGradNorm], [0.9, 0.99, 0.1, 0.1, 0.1]);
    assert.deepEqual([c.continuationTemperature, c.continuationTopP, c.maxTokens], [0.8, 0.95, 1024]);
    assert.equal(c.epsilon, 0.2);
    assert.equal(c.scaleRewards, 'group');
  });

  it('GRPO is one round with no trajectories; bad values name the setting', () => {
    const g = resolveTrainConfig({ method: 'grpo' });
    assert.equal(g.rounds, 1);
    assert.equal(g.trajectories, 0);
    assert.throws(() => resolveTrainConfig({ numGenerations: 1 }), /numGenerations: expected an integer >= 2/);
    assert.throws(
      () => resolveTrainConfig({ lossType: 'ppo' as 'grpo' }),
      /lossType: expected one of grpo, bnpo, dr_grpo/,
    );
    assert.throws(
      () => resolveTrainConfig({ lora: { rank: 0, alpha: 1, targets: ['q_proj'], rslora: false } }),
      /lora.rank/,
    );
    assert.throws(
      () => resolveTrainConfig({ lora: { rank: 4, alpha: 1, targets: ['lm_head'], rslora: false } }),
      /lora.targets/,
    );
    assert.throws(() => resolveTrainConfig({ bogus: 1 } as never), /unknown training setting 'bogus'/);
    assert.throws(() => resolveTrainConfig({ trajectories: 0 }), /trajectories/);
  });
});
