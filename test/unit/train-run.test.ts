// The trainer loop on the fake model (test/helpers/fake-trainable.ts): a short MOTIF run writes every
// file of the run folder; GRPO, gradient accumulation, constant-group dropping and the 'base'
// continuation policy drive the model as specified; a NaN/Inf loss or gradient skips the update and
// never reaches a checkpoint; an aborted run resumes to the uninterrupted run's metrics; bad
// settings and run folders give clear errors; evaluation writes one line per problem.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { SafetensorsFile } from '../../lib/formats/safetensors.js';
import type { Model } from '../../lib/model/Model.js';
import { closeSymbolic } from '../../lib/text/symbolic.js';
import { evaluate } from '../../lib/train/evaluate.js';
import { readF32 } from '../../lib/train/peft.js';
import { ProgressBar } from '../../lib/train/progress.js';
import { latestCheckpoint } from '../../lib/train/run-dir.js';
import { type TrainOptions, train } from '../../lib/train/trainer.js';
import type { TrainableModel } from '../../lib/train/types.js';
import { fakeModel, fakeRows, fastSettings } from '../helpers/fake-trainable.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-train-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
  await closeSymbolic();
});

const rows = fakeRows(8);

/** Compile-time check (tsc -p tsconfig.check.json): the engine's Model fulfils the trainer's contract. */
export const modelIsTrainable = (m: Model): TrainableModel => m;
const quiet = { log: () => {} };

async function lines(file: string): Promise<Record<string, unknown>[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Metrics without the fields that change from run to run (timings). */
export function stable(m: Record<string, unknown>[]): Record<string, unknown>[] {
  return m.map(({ timing: _t, ...rest }) => rest);
}

async function allCheckpointTensorsFinite(dir: string): Promise<boolean> {
  for (const f of ['adapter_model.safetensors', 'optimizer.safetensors']) {
    const st = await SafetensorsFile.open(path.join(dir, f));
    try {
      for (const name of st.tensors.keys())
        if ((await readF32(st, name)).some((x) => !Number.isFinite(x))) return false;
    } finally {
      await st.close();
    }
  }
  return true;
}

describe('a short MOTIF run', () => {
  it('writes manifest, metrics, samples, checkpoints and the final adapter', async () => {
    const runDir = path.join(tmp, 'short');
    const model = fakeModel(rows);
    const r = await train(model, { ...fastSettings(), ...quiet, dataset: rows, runDir, baseModel: 'fake/base' });
    assert.equal(r.stepsCompleted, 4);
    assert.equal(r.skippedSteps, 0);
    assert.deepEqual((await readdir(runDir)).sort(), [
      'adapter',
      'checkpoints',
      'manifest.json',
      'metrics.jsonl',
      'report.html',
      'samples.jsonl',
    ]);
    // The run's charts page carries its metrics (lib/report has its own tests).
    assert.match(await readFile(path.join(runDir, 'report.html'), 'utf8'), /<!DOCTYPE html>/i);

    const manifest = JSON.parse(await readFile(path.join(runDir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.seed, 7);
    assert.equal(manifest.config.numGenerations, 4);
    assert.equal(manifest.package.name, 'motif-native');
    assert.match(manifest.package.version, /^\d+\.\d+\.\d+/);
    assert.ok(manifest.git === null || (typeof manifest.git.dirty === 'boolean' && 'commit' in manifest.git));
    assert.equal(manifest.model.config.numLayers, 2);
    assert.equal(manifest.dataset.trainRows, 8);
    assert.deepEqual(
      manifest.rewards.map((x: { name: string }) => x.name),
      ['outcome', 'xmlcount', 'soft_format', 'strict_format'],
    );

    const metrics = await lines(path.join(runDir, 'metrics.jsonl'));
    assert.deepEqual(
      metrics.map((m) => m.step),
      [1, 2, 3, 4],
    );
    for (const m of metrics) {
      for (const k of [
        'lr',
        'loss',
        'gradNorm',
        'reward',
        'rewards',
        'accuracy',
        'kl',
        'clipFraction',
        'completionLength',
        'tokens',
        'timing',
      ])
        assert.ok(k in m, `metrics lack ${k}`);
      assert.deepEqual(Object.keys(m.rewards as object), ['outcome', 'xmlcount', 'soft_format', 'strict_format']);
      const t = m.timing as Record<string, number>;
      assert.ok(t.rolloutSeconds >= 0 && t.trainSeconds >= 0);
      assert.equal((m.tokens as { loss: number }).loss, (m.tokens as { firstRound: number }).firstRound);
    }
    assert.equal(metrics[0]?.lr, 0, 'the first update of a warmup uses lr 0 (transformers)');
    assert.equal(metrics[1]?.lr, 1e-2);

    const samples = await lines(path.join(runDir, 'samples.jsonl'));
    assert.equal(samples.length, 4 * 2);
    const s0 = samples[0] as { trajectories: string[][]; firstRound: string; question: string };
    assert.equal(s0.trajectories.length, 2, 'k trajectories');
    assert.ok(
      s0.trajectories.every((t) => t.length === 3 && t[0] === s0.firstRound),
      'rounds 1..R each',
    );

    assert.deepEqual((await readdir(path.join(runDir, 'checkpoints'))).sort(), ['step-2', 'step-4']);
    assert.deepEqual((await readdir(path.join(runDir, 'checkpoints', 'step-2'))).sort(), [
      'adapter_config.json',
      'adapter_model.safetensors',
      'optimizer.safetensors',
      'trainer_state.json',
    ]);
    const state = JSON.parse(await readFile(path.join(runDir, 'checkpoints', 'step-2', 'trainer_state.json'), 'utf8'));
    assert.equal(state.step, 2);
    assert.equal(state.dataCursor, 4);
    assert.equal(state.schedule.position, 2);
    assert.equal(typeof state.rngState, 'number');
    const adapterCfg = JSON.parse(await readFile(path.join(runDir, 'adapter', 'adapter_config.json'), 'utf8'));
    assert.equal(adapterCfg.base_model_name_or_path, 'fake/base');

    // Rollout shape: per step one generate call per round; round 1 has one request per question.
    assert.equal(model.generateCalls, 4 * 3);
    assert.deepEqual(
      model.generateLog.slice(0, 3).map((g) => g.requests),
      [2, 2 * 4, 2 * 4 * 2],
    );
    assert.equal(model.batches[0]?.completionIds.length, 2 * 4);
    assert.equal(model.batches[0]?.promptIds.length, 2);
    assert.equal(model.batches[0]?.temperature, 0.8);

    // An incomplete checkpoint folder is ignored; the newest complete one is found.
    await mkdir(path.join(runDir, 'checkpoints', 'step-6'));
    await writeFile(path.join(runDir, 'checkpoints', 'step-6', 'trainer_state.json'), '{"step": 6');
    assert.equal((await latestCheckpoint(runDir))?.step, 4);
  });

  it('GRPO: one round; gradient accumulation; constant groups dropped; base continuations', async () => {
    const g = fakeModel(rows);
    await train(g, {
      ...fastSettings(),
      ...quiet,
      method: 'grpo',
      steps: 2,
      gradAccum: 2,
      dataset: rows,
      runDir: path.join(tmp, 'grpo'),
    });
    assert.equal(g.generateCalls, 2 * 2, 'one generate call per micro-batch');
    assert.equal(g.lossCalls, 4);
    const gm = await lines(path.join(tmp, 'grpo', 'metrics.jsonl'));
    assert.equal((gm[0] as { tokens: { continuations: number } }).tokens.continuations, 0);

    const d = fakeModel(rows);
    const drop = { steps: 4, numGenerations: 2, dropConstantGroups: true };
    await train(d, { ...fastSettings(), ...quiet, ...drop, dataset: rows, runDir: path.join(tmp, 'drop') });
    const dm = await lines(path.join(tmp, 'drop', 'metrics.jsonl'));
    const dropped = dm.reduce((n, m) => n + (m.groups as { dropped: number }).dropped, 0);
    const constant = dm.reduce((n, m) => n + (m.groups as { constant: number }).constant, 0);
    assert.equal(dropped, constant);
    assert.ok(dropped > 0, 'the fake produces some constant groups');
    const kept = d.batches.reduce((n, b) => n + b.completionIds.length, 0);
    assert.equal(kept, (4 * 2 - dropped) * 2);

    const b = fakeModel(rows);
    await train(b, {
      ...fastSettings(),
      ...quiet,
      steps: 1,
      continuationPolicy: 'base',
      dataset: rows,
      runDir: path.join(tmp, 'base'),
    });
    assert.deepEqual(
      b.generateLog.map((x) => x.enabled),
      [true, false, false],
    );
    assert.equal(b.adapterEnabled, true);
  });
});

describe('rewards and templates from files', () => {
  it('adds a reward module and uses a templates file', async () => {
    const mod = path.join(tmp, 'short-answers.mjs');
    await writeFile(
      mod,
      'export function brevity(batch) { return batch.map((x) => (x.response.length < 60 ? 1 : 0)); }\nbrevity.weight = 0.5;\n',
    );
    const tpl = path.join(tmp, 'templates.json');
    await writeFile(tpl, JSON.stringify({ finalRound: ' Last round ({finalOrdinal}): box it.' }));
    const model = fakeModel(rows);
    const runDir = path.join(tmp, 'module');
    await train(model, {
      ...fastSettings(),
      ...quiet,
      steps: 1,
      rewardModule: mod,
      templatesFile: tpl,
      dataset: rows,
      runDir,
    });
    const [m] = await lines(path.join(runDir, 'metrics.jsonl'));
    assert.deepEqual(Object.keys((m as { rewards: object }).rewards), [
      'outcome',
      'xmlcount',
      'soft_format',
      'strict_format',
      'brevity',
    ]);
    const manifest = JSON.parse(await readFile(path.join(runDir, 'manifest.json'), 'utf8'));
    assert.deepEqual(manifest.rewards.at(-1), { name: 'brevity', weight: 0.5 });
    assert.equal(manifest.templates.finalRound, ' Last round ({finalOrdinal}): box it.');
    await assert.rejects(
      train(fakeModel(rows), {
        ...fastSettings(),
        ...quiet,
        builtinRewards: false,
        dataset: rows,
        runDir: path.join(tmp, 'none'),
      }),
      /no reward to train on/,
    );
  });
});

describe('NaN / Inf', () => {
  for (const kind of ['loss', 'gradient'] as const) {
    it(`a non-finite ${kind} skips the update and never reaches a checkpoint`, async () => {
      const runDir = path.join(tmp, `nan-${kind}`);
      const model = fakeModel(rows, kind === 'loss' ? { nanLossAtCall: [2] } : { nanGradAtCall: [2] });
      const warnings: string[] = [];
      const r = await train(model, {
        ...fastSettings(),
        steps: 3,
        saveEvery: 1,
        dataset: rows,
        runDir,
        log: (m) => warnings.push(m),
      });
      assert.equal(r.skippedSteps, 1);
      const metrics = await lines(path.join(runDir, 'metrics.jsonl'));
      assert.equal(metrics[1]?.skipped, true);
      assert.equal(metrics[1]?.updated, false);
      assert.match(String(metrics[1]?.warning), new RegExp(`non-finite ${kind}`));
      assert.ok(warnings.some((w) => w.startsWith('step 2: non-finite')));
      assert.deepEqual((await readdir(path.join(runDir, 'checkpoints'))).sort(), ['step-1', 'step-3']);
      for (const s of ['step-1', 'step-3'])
        assert.ok(await allCheckpointTensorsFinite(path.join(runDir, 'checkpoints', s)), `${s} holds NaN/Inf`);
      const state3 = JSON.parse(
        await readFile(path.join(runDir, 'checkpoints', 'step-3', 'trainer_state.json'), 'utf8'),
      );
      assert.equal(state3.skippedSteps, 1);
      const opt = await SafetensorsFile.open(path.join(runDir, 'checkpoints', 'step-3', 'optimizer.safetensors'));
      assert.equal(opt.metadata.step, '2', 'two updates were made in three steps');
      await opt.close();
    });
  }
});

describe('resume', () => {
  const settings = (): Partial<TrainOptions> => ({ ...fastSettings(), steps: 5, saveEvery: 2, ...quiet });

  it('an aborted run resumes from its checkpoint to the uninterrupted metrics', async () => {
    const full = path.join(tmp, 'full');
    await train(fakeModel(rows), { ...settings(), dataset: rows, runDir: full });
    const part = path.join(tmp, 'part');
    const ac = new AbortController();
    const r1 = await train(fakeModel(rows), {
      ...settings(),
      dataset: rows,
      runDir: part,
      signal: ac.signal,
      onStep: (m) => {
        if (m.step === 3) ac.abort();
      },
    });
    assert.equal(r1.aborted, true);
    assert.equal(r1.stepsCompleted, 3);
    assert.equal((await latestCheckpoint(part))?.step, 3);
    const r2 = await train(fakeModel(rows), { ...settings(), dataset: rows, runDir: part, resume: true });
    assert.equal(r2.stepsCompleted, 5);
    assert.deepEqual(
      stable(await lines(path.join(part, 'metrics.jsonl'))),
      stable(await lines(path.join(full, 'metrics.jsonl'))),
    );
    assert.deepEqual(
      await readFile(path.join(part, 'adapter', 'adapter_model.safetensors')),
      await readFile(path.join(full, 'adapter', 'adapter_model.safetensors')),
    );
    const manifest = JSON.parse(await readFile(path.join(part, 'manifest.json'), 'utf8'));
    assert.equal(manifest.resumes.length, 1);
    assert.equal(manifest.resumes[0].fromStep, 3);
  });

  it('refuses a different configuration, different data, or a fresh run over an old one', async () => {
    const full = path.join(tmp, 'full');
    await assert.rejects(
      train(fakeModel(rows), { ...settings(), lr: 0.5, dataset: rows, runDir: full, resume: true }),
      /cannot resume .*settings differ.*lr: 0\.01 -> 0\.5/,
    );
    await assert.rejects(
      train(fakeModel(rows), { ...settings(), dataset: rows.slice(1), runDir: full, resume: true }),
      /training rows differ/,
    );
    await assert.rejects(
      train(fakeModel(rows), { ...settings(), dataset: rows, runDir: full }),
      /already holds a training run; pass --resume/,
    );
  });
});

describe('bad input', () => {
  it('gives clear errors', async () => {
    const runDir = path.join(tmp, 'bad');
    await assert.rejects(
      train(fakeModel(rows), { ...fastSettings(), numGenerations: 1, dataset: rows, runDir }),
      /numGenerations: expected an integer >= 2, got 1/,
    );
    await assert.rejects(train(fakeModel(rows), { ...fastSettings(), dataset: [], runDir }), /the dataset has no rows/);
    await assert.rejects(
      train(fakeModel(rows), { ...fastSettings(), dataset: path.join(tmp, 'missing.jsonl'), runDir }),
      /missing\.jsonl/,
    );
    await assert.rejects(
      train(fakeModel(rows), { ...fastSettings(), rewardModule: path.join(tmp, 'nope.mjs'), dataset: rows, runDir }),
      /nope\.mjs: cannot load reward module/,
    );
    const m = fakeModel(rows);
    Object.defineProperty(m, 'tokenizer', { value: undefined });
    await assert.rejects(train(m, { ...fastSettings(), dataset: rows, runDir }), /no tokenizer/);
  });
});

describe('evaluate', () => {
  it('greedy multi-round pass@1 with both metrics, one JSON line per problem', async () => {
    const out = path.join(tmp, 'eval.jsonl');
    const model = fakeModel(rows);
    const r = await evaluate(model, { dataset: rows, rounds: 3, out, batchSize: 3, limit: 7 });
    assert.equal(r.problems, 7);
    const per = await lines(out);
    assert.equal(per.length, 7);
    assert.ok(per.every((p) => (p.rounds as string[]).length === 3));
    assert.equal(r.strict.correct, per.filter((p) => p.strict).length);
    assert.equal(r.match.correct, per.filter((p) => p.match).length);
    assert.equal(model.generateCalls, 3 * 3, 'one call per round per batch of 3');
    const again = await evaluate(fakeModel(rows), { dataset: rows, rounds: 3, limit: 7 });
    assert.deepEqual(again.results, r.results, 'greedy is deterministic');
    const single = await evaluate(fakeModel(rows), { dataset: rows, prompt: 'grpo' });
    assert.equal(single.rounds, 1);
    assert.ok(single.results.every((p) => p.rounds.length === 1));
  });
});

describe('progress display', () => {
  it('prints plain lines off a TTY and a redrawn bar on one', () => {
    const out: string[] = [];
    const stream = { write: (s: string) => out.push(s) > 0, isTTY: false } as unknown as NodeJS.WritableStream;
    const plain = new ProgressBar({ total: 10, stream });
    plain.update({ step: 1, reward: 1.5, accuracy: 0.25, tokensPerSecond: 12.34 });
    plain.log('a warning');
    assert.match(out[0] as string, /^train step 1\/10 {2}ETA \S+ {2}reward 1\.500 {2}acc 25\.0% {2}12\.3 tok\/s\n$/);
    assert.equal(out[1], 'a warning\n');
    out.length = 0;
    const bar = new ProgressBar({ total: 4, stream, tty: true });
    bar.update({ step: 2, skipped: true });
    bar.log('checkpoint');
    bar.done();
    assert.ok((out[0] as string).startsWith('\r\u001b[2Ktrain [##########----------] 2/4 '), out[0]);
    assert.ok((out[0] as string).endsWith('SKIPPED'));
    assert.match(out[1] as string, /checkpoint\n.*2\/4/);
    assert.equal(out[2], '\n');
  });
});
