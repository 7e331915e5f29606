/**
 * sft.test.ts — supervised fine-tuning on the engine: a tiny random Qwen2 model with the real Qwen2.5
 * tokenizer (its chat template) learns a handful of examples (the loss on them drops clearly), the
 * run folder holds what it should, the adapter folder loads back with loadModel(dir, { adapter }) and
 * gives the trained model's loss, and `motif-native sft` runs end to end with --val-fraction and --merge.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel, type Model } from '../../lib/index.js';
import { formatSftExample, type SftExample, type SftStepMetrics, sft, sftBatch } from '../../lib/train/sft.js';
import { writeTinyChatModel } from '../helpers/tiny-model.js';
import { relativeL2 } from '../helpers/torch-reference.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

const EXAMPLES: SftExample[] = [
  { prompt: 'What is 2+3?', response: 'The answer is 5.', system: 'Be brief.' },
  {
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say hi' },
      { role: 'assistant', content: 'Hello there!' },
    ],
  },
  { prompt: 'Name a color.', response: 'Blue.', system: 'Be brief.' },
  { prompt: 'Count to three.', response: '1, 2, 3', system: 'Be brief.' },
];

/** Runs the CLI with space-separated arguments (paths here have no spaces). */
const motifNative = (args: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'lib/cli/cli.ts'), ...args.split(' ')], {
    encoding: 'utf8',
    cwd: ROOT,
  });

let tmp: string;
let modelDir: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-sft-'));
  modelDir = await writeTinyChatModel(path.join(tmp, 'model'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Mean NLL per response token of the examples under `model`'s current adapter. */
async function lossOn(model: Model, examples: readonly SftExample[]): Promise<number> {
  const tokenizer = model.tokenizer;
  assert.ok(tokenizer);
  const items = examples.map((e) => formatSftExample(tokenizer, e, 256));
  const batch = sftBatch(items.map((t) => t ?? assert.fail('an example did not fit')));
  return (await model.lossAndGradients(batch)).loss;
}

describe('sft on the engine', () => {
  let model: Model;
  before(async () => {
    model = await loadModel(modelDir, { device: 'cpu', threads: 2 });
  });
  after(async () => {
    await model?.dispose();
  });

  it('learns the examples, writes the run folder, and the adapter loads back', async () => {
    const out = path.join(tmp, 'run');
    const steps: SftStepMetrics[] = [];
    const r = await sft(model, EXAMPLES, {
      outDir: out,
      epochs: 8,
      batchSize: 2,
      gradAccum: 1,
      lr: 2e-2,
      warmupRatio: 0.1,
      lora: { rank: 8, alpha: 16 },
      validation: EXAMPLES,
      saveEvery: 4,
      baseModel: modelDir,
      log: () => {},
      onStep: (m) => {
        steps.push(m);
      },
    });
    assert.equal(r.steps, 16);
    assert.equal(r.skippedSteps, 0);
    assert.equal(r.examples, 4);
    assert.equal(steps.length, 16);
    assert.equal(steps[0].lr, 0, 'the first update of a warmup uses lr 0 (transformers)');
    assert.ok(steps.every((m) => Number.isFinite(m.loss) && m.tokens > 0 && m.examples === 2 && m.gradNorm !== null));
    // Before: a random model over 151665 tokens (more than ln 151665 = 11.9); after: clearly lower.
    const before = r.validationLossBefore as number;
    const afterLoss = r.validationLoss as number;
    assert.ok(before > 10, `initial loss ${before}`);
    assert.ok(afterLoss < 0.6 * before, `loss did not drop clearly: ${before} -> ${afterLoss}`);
    // metrics.jsonl has one line per step, the same as the callback got
    const lines = (await readFile(path.join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    assert.equal(lines.length, 16);
    assert.deepEqual(JSON.parse(lines[15]), JSON.parse(JSON.stringify(steps[15])));
    const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8'));
    assert.equal(manifest.format, 'motif-native-sft-run');
    assert.equal(manifest.data.totalSteps, 16);
    for (const ck of ['step-4', 'step-8', 'step-12'])
      assert.ok((await stat(path.join(out, 'checkpoints', ck, 'adapter_model.safetensors'))).size > 0, ck);
    // The adapter folder loads back and gives the trained model's loss.
    assert.equal(r.adapterDir, path.join(out, 'adapter'));
    const trained = await lossOn(model, EXAMPLES);
    assert.ok(Math.abs(trained - afterLoss) <= 1e-5 * afterLoss, `${trained} vs ${afterLoss}`);
    const loaded = await loadModel(modelDir, { device: 'cpu', threads: 2, adapter: r.adapterDir });
    try {
      const again = await lossOn(loaded, EXAMPLES);
      assert.ok(Math.abs(again - trained) <= 1e-6 * trained, `loaded adapter loss ${again} vs ${trained}`);
    } finally {
      await loaded.dispose();
    }
  });

  it('stopped after step 3 and resumed, a run writes the adapter an uninterrupted run writes', async () => {
    const opts = { epochs: 2, batchSize: 2, lr: 2e-2, lora: { rank: 4, alpha: 8 }, seed: 3, log: () => {} };
    const whole = await sft(model, EXAMPLES, { ...opts, outDir: path.join(tmp, 'whole') });
    assert.equal(whole.steps, 4);
    const out = path.join(tmp, 'stopped');
    const stop = new AbortController();
    const first = await sft(model, EXAMPLES, {
      ...opts,
      outDir: out,
      signal: stop.signal,
      onStep: (m) => {
        if (m.step === 3) stop.abort(); // in the second epoch
      },
    });
    assert.equal(first.aborted, true);
    assert.equal(first.steps, 3);
    assert.ok((await stat(path.join(out, 'checkpoints', 'step-3', 'optimizer.safetensors'))).size > 0);
    const resumed = await sft(model, EXAMPLES, { ...opts, outDir: out, resume: true });
    assert.equal(resumed.steps, 4);
    assert.equal(resumed.aborted, false);
    const bytes = (dir: string) => readFile(path.join(dir, 'adapter', 'adapter_model.safetensors'));
    assert.ok((await bytes(out)).equals(await bytes(path.join(tmp, 'whole'))), 'resumed adapter differs');
    const losses = async (dir: string) =>
      (await readFile(path.join(dir, 'metrics.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as SftStepMetrics).loss);
    assert.deepEqual(await losses(out), await losses(path.join(tmp, 'whole')));
    // Other settings, or --full, cannot resume it.
    await assert.rejects(sft(model, EXAMPLES, { ...opts, lr: 1e-3, outDir: out, resume: true }), /the settings differ/);
    await assert.rejects(
      sft(model, EXAMPLES.slice(1), { ...opts, outDir: out, resume: true }),
      /the training examples differ/,
    );
    await assert.rejects(
      sft(model, EXAMPLES, { ...opts, full: true, outDir: out, resume: true }),
      /resume is for LoRA runs/,
    );
  });

  it('refuses an output folder that holds a run, and bad options name the option', async () => {
    await assert.rejects(sft(model, EXAMPLES, { outDir: path.join(tmp, 'run') }), /already holds a training run/);
    await assert.rejects(
      sft(model, EXAMPLES, { outDir: path.join(tmp, 'x'), batchSize: 0 }),
      /sft: batchSize must be an integer >= 1/,
    );
    await assert.rejects(
      sft(model, EXAMPLES, { outDir: path.join(tmp, 'y'), maxLength: 4096 }),
      /maxLength must be at most the model's max_position_embeddings \(256\)/,
    );
    await assert.rejects(
      sft(model, [{ prompt: 'a' } as unknown as SftExample], { outDir: path.join(tmp, 'z') }),
      /examples\[0\]: "response"/,
    );
  });
});

describe('motif-native sft', () => {
  it('runs end to end: validation loss, adapter, merged model', async () => {
    const data = path.join(tmp, 'data.jsonl');
    const rows = [...EXAMPLES, ...EXAMPLES, ...EXAMPLES].map((e) => JSON.stringify(e));
    await writeFile(data, `${rows.join('\n')}\n`);
    const out = path.join(tmp, 'cli-run');
    const r = motifNative(
      `sft --model ${modelDir} --dataset ${data} --out ${out} --epochs 3 --lr 0.02 --lora-r 4 --lora-alpha 8 ` +
        '--lora-targets q_proj,v_proj,down_proj --val-fraction 0.25 --threads 2 --merge',
    );
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /done: 9 steps on 9 examples/);
    const m = /validation loss \(3 examples\): ([\d.]+) before, ([\d.]+) after/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.ok(Number(m[2]) < Number(m[1]), `validation loss did not drop: ${m[1]} -> ${m[2]}`);
    const cfg = JSON.parse(await readFile(path.join(out, 'adapter', 'adapter_config.json'), 'utf8'));
    assert.equal(cfg.r, 4);
    assert.deepEqual([...cfg.target_modules].sort(), ['down_proj', 'q_proj', 'v_proj']);
    // The merged model computes what the base model + adapter computes.
    const merged = await loadModel(path.join(out, 'merged'), { device: 'cpu', threads: 2 });
    const adapted = await loadModel(modelDir, { device: 'cpu', threads: 2, adapter: path.join(out, 'adapter') });
    try {
      const seq = [151644, 872, 198, 9707, 151645];
      const a = await merged.forward(seq);
      const b = await adapted.forward(seq);
      assert.ok(relativeL2(a, b) < 1e-5, `merged vs adapter logits: ${relativeL2(a, b)}`);
    } finally {
      await merged.dispose();
      await adapted.dispose();
    }
    const bad = path.join(tmp, 'bad.jsonl');
    await writeFile(bad, '{"prompt":"a","response":"b"}\n{"messages":[{"role":"user","content":"q"}]}\n');
    const e = motifNative(`sft --model ${modelDir} --dataset ${bad} --out ${path.join(tmp, 'e')}`);
    assert.equal(e.status, 1);
    assert.match(
      e.stderr,
      new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: "messages" must be an array of at least two`),
    );
  });
});
