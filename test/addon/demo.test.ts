/**
 * demo.test.ts — the built-in demo end to end, shortened (2 MOTIF steps, 12 held-out problems): the
 * shipped model (assets/demo-model) loads with its own tokenizer, `train` with no --model runs
 * through the ordinary trainer, and every file of the run folder is checked: summary.json (fields and
 * types; its accuracies equal the counts in eval-before/after.jsonl), metrics.jsonl (one line per
 * step), manifest.json, samples.jsonl, the PEFT adapter (readable, shaped for the model), and the
 * before/after per-problem evaluations. Also: the CLI path (`motif-native train --steps 1`), and that
 * flags the user gives win over the demo's settings. Timings are recorded but never checked.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type DemoSummary, demoModelDir, runDemo } from '../../lib/demo/run-demo.js';
import { DEMO_SETTINGS } from '../../lib/demo/settings.js';
import { solveDemo } from '../../lib/demo/task.js';
import { loadModel } from '../../lib/index.js';
import type { TrainConfig } from '../../lib/train/config.js';
import { readAdapter } from '../../lib/train/peft.js';

/** The parts of manifest.json checked here. */
interface RunManifest {
  format: string;
  config: TrainConfig;
  dataset: { trainRows: number };
  templates: { system: string };
  demo: { task: unknown };
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-demo-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function jsonl(file: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(file, 'utf8');
  assert.ok(text.endsWith('\n'), `${file} ends with a newline`);
  return text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('built-in demo', () => {
  it('ships a model folder of at most 10 MB with a tokenizer and chat template', async () => {
    const dir = demoModelDir();
    const names = await readdir(dir);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'])
      assert.ok(names.includes(f), f);
    let bytes = 0;
    for (const n of names) bytes += (await readFile(path.join(dir, n))).length;
    assert.ok(bytes <= 10 * 2 ** 20, `${bytes} bytes`);
    const cfg = JSON.parse(await readFile(path.join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(typeof cfg.chat_template, 'string');
  });

  it('runs shortened end to end and writes every file', async () => {
    const runDir = path.join(tmp, 'run');
    const lines: string[] = [];
    const evalProblems = 12;
    const summary = await runDemo(
      { steps: 2, 'num-generations': 4, 'batch-size': 2, 'run-dir': runDir, threads: 2, device: 'cpu' },
      { loadModel, evalProblems, trainProblems: 40, print: (l) => lines.push(l) },
    );
    // Printed: before and after.
    assert.ok(lines.some((l) => /accuracy before training: \d+\.\d%/.test(l)));
    assert.ok(lines.some((l) => /accuracy after 2 MOTIF steps: \d+\.\d%/.test(l)));

    const names = (await readdir(runDir)).sort();
    for (const f of [
      'adapter',
      'checkpoints',
      'eval-after.jsonl',
      'eval-before.jsonl',
      'manifest.json',
      'metrics.jsonl',
      'report.html',
      'samples.jsonl',
      'summary.json',
    ])
      assert.ok(names.includes(f), `${f} in ${names.join(', ')}`);
    // report.html was rewritten after summary.json, so it embeds the before/after accuracies.
    const html = await readFile(path.join(runDir, 'report.html'), 'utf8');
    assert.match(html, /\d+(\.\d+)?% → \d+(\.\d+)?%/);

    const s = JSON.parse(await readFile(path.join(runDir, 'summary.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(s, JSON.parse(JSON.stringify(summary)));
    assert.equal(s.format, 'motif-native-demo-summary');
    assert.equal(s.method, 'motif');
    assert.equal(s.steps, 2);
    assert.equal(s.stepsCompleted, 2);
    assert.equal(s.aborted, false);
    for (const k of ['accuracyBefore', 'accuracyAfter']) {
      const v = s[k] as number;
      assert.ok(typeof v === 'number' && v >= 0 && v <= 1, k);
    }
    for (const k of ['wallSeconds', 'trainSeconds']) assert.ok((s[k] as number) > 0, k);
    assert.deepEqual(s.evalProtocol, {
      prompt: 'motif',
      rounds: DEMO_SETTINGS.task.rounds,
      problems: evalProblems,
      maxTokens: DEMO_SETTINGS.maxTokens,
    });
    assert.equal(s.adapter, path.join(runDir, 'adapter'));

    // The per-problem evaluations: one line per problem, 3 rounds each, graded against the task's answer.
    for (const [name, acc] of [
      ['eval-before.jsonl', s.accuracyBefore],
      ['eval-after.jsonl', s.accuracyAfter],
    ] as const) {
      const rows = await jsonl(path.join(runDir, name));
      assert.equal(rows.length, evalProblems, name);
      for (const r of rows) {
        assert.equal(r.reference, solveDemo(r.question as string));
        assert.equal((r.rounds as string[]).length, DEMO_SETTINGS.task.rounds);
        assert.equal(r.strict, (r.rounds as string[])[2]?.includes(`\\boxed{${r.reference}}`));
      }
      assert.equal(rows.filter((r) => r.strict).length / evalProblems, acc, name);
    }

    const metrics = await jsonl(path.join(runDir, 'metrics.jsonl'));
    assert.deepEqual(
      metrics.map((m) => m.step),
      [1, 2],
    );
    for (const m of metrics) assert.equal(typeof m.loss, 'number');

    const manifest = JSON.parse(await readFile(path.join(runDir, 'manifest.json'), 'utf8')) as RunManifest;
    assert.equal(manifest.format, 'motif-native-run');
    assert.equal(manifest.config.method, 'motif');
    assert.equal(manifest.config.numGenerations, 4); // the flag wins over the demo's 8
    assert.equal(manifest.config.batchSize, 2);
    assert.equal(manifest.config.maxTokens, DEMO_SETTINGS.maxTokens); // the demo's, not the paper's 1024
    assert.equal(manifest.config.lora.rank, DEMO_SETTINGS.train.lora.rank);
    assert.equal(manifest.dataset.trainRows, 40);
    assert.equal(manifest.templates.system, 'Sum the digits mod 10 in {rounds} rounds.');
    assert.deepEqual(manifest.demo.task, DEMO_SETTINGS.task);

    const samples = await jsonl(path.join(runDir, 'samples.jsonl'));
    assert.ok(samples.length > 0);

    const cfg = JSON.parse(await readFile(path.join(demoModelDir(), 'config.json'), 'utf8')) as Record<string, number>;
    const shape = await loadModel(demoModelDir(), { device: 'cpu', threads: 1, tokenizer: false });
    const adapter = await readAdapter(path.join(runDir, 'adapter'), shape.config);
    await shape.dispose();
    assert.equal(adapter.lora.rank, DEMO_SETTINGS.train.lora.rank);
    const qA = adapter.tensors.get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    assert.equal(qA?.length, adapter.lora.rank * (cfg.hidden_size as number));
    assert.equal(adapter.tensors.size, 2 * 7 * (cfg.num_hidden_layers as number));
  });

  it('refuses --dataset without --model, and a run folder that already holds a run', async () => {
    await assert.rejects(runDemo({ dataset: 'x.jsonl' }, { loadModel }), /--dataset needs --model/);
    await assert.rejects(
      runDemo({ steps: 1, 'run-dir': path.join(tmp, 'run') }, { loadModel, evalProblems: 2, print: () => {} }),
      /already holds a training run/,
    );
  });

  it('runs from the command line with no --model', async () => {
    const runDir = path.join(tmp, 'cli-run');
    const flags = '--steps 1 --num-generations 2 --batch-size 1 --method grpo --threads 2 --quiet'.split(' ');
    const cli = path.join(ROOT, 'lib/cli/cli.ts');
    const r = spawnSync(process.execPath, ['--import', 'tsx', cli, 'train', ...flags, '--run-dir', runDir], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 240_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(await readFile(path.join(runDir, 'summary.json'), 'utf8')) as DemoSummary;
    assert.equal(s.method, 'grpo');
    assert.equal(s.evalProtocol.prompt, 'grpo');
    assert.equal(s.evalProtocol.rounds, 1);
  });
});
