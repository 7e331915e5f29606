/**
 * train-faults.test.ts — a real training run (tiny random Qwen2 model on the CPU engine, the Qwen2.5
 * tokenizer from ../shared/data) survives being killed and interrupted:
 *
 * - SIGKILL during a rollout (inside generate), during the optimizer step (inside the native AdamW)
 *   and during a checkpoint write (adapter written, optimizer not yet): the folder never shows a
 *   half-written checkpoint under its final name, `--resume` continues from the last complete one,
 *   and the resumed run's metrics (timings left out), samples and final adapter + optimizer bytes
 *   equal an uninterrupted run's (the CPU engine is deterministic for a fixed thread count).
 * - SIGINT (Ctrl-C) to the `train` command: it finishes the step, writes a final checkpoint, prints
 *   "stopped", exits with 130, and `--resume` completes the run.
 *
 * Each run is a child process (test/helpers/real-train-child.ts, or the CLI itself).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { latestCheckpoint } from '../../lib/train/run-dir.js';
import { type ChildSpec, faultRows, type KillPoint } from '../helpers/real-train-child.js';
import { writeTinyModel } from '../helpers/tiny-model.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TOKENIZER = path.join(ROOT, '..', 'shared', 'data', 'tokenizer', 'qwen2.5');
const CHILD = path.join(ROOT, 'test', 'helpers', 'real-train-child.ts');
const STEPS = 3;
/**
 * Under scripts/ci-hardening.sh's sanitized addon these runs take many minutes; what they check is the
 * trainer's recovery, not memory safety (the same engine calls run under ASan in the other addon tests).
 */
const SKIP = (process.env.LD_PRELOAD ?? '').includes('asan') && 'slow under AddressSanitizer; run in the plain suite';

let tmp: string;
let modelDir: string;
let fullRun: string;

const settings = () => ({
  steps: STEPS,
  saveEvery: 1,
  batchSize: 1,
  numGenerations: 2,
  trajectories: 1,
  rounds: 2,
  maxTokens: 16,
  lr: 0.01,
  warmupRatio: 0.25,
  maxGradNorm: 1,
  lora: { rank: 2, alpha: 4, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: false },
  seed: 7,
  dataset: faultRows(3),
});

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

function runProcess(args: string[], onSpawn?: (child: ChildProcess) => void): Promise<ChildResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  onSpawn?.(child);
  let out = '';
  let err = '';
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err });
    });
  });
}

function trainChild(runDir: string, extra: Partial<ChildSpec> = {}): Promise<ChildResult> {
  const spec: ChildSpec = { modelDir, runDir, settings: settings(), ...extra };
  return runProcess([CHILD, JSON.stringify(spec)]);
}

async function metrics(runDir: string): Promise<Record<string, unknown>[]> {
  return (await readFile(path.join(runDir, 'metrics.jsonl'), 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const { timing: _t, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return rest;
    });
}

before(async () => {
  if (SKIP) return;
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-faults-'));
  // One layer, 16 wide, the full Qwen2.5 vocabulary (tied embeddings), room for MOTIF's prompts.
  modelDir = await writeTinyModel(path.join(tmp, 'model'), {
    vocab: 151665,
    hidden: 16,
    heads: 2,
    kvHeads: 1,
    intermediate: 24,
    layers: 1,
    tie: true,
    seed: 3,
  });
  const cfgFile = path.join(modelDir, 'config.json');
  const cfg = JSON.parse(await readFile(cfgFile, 'utf8')) as Record<string, unknown>;
  await writeFile(cfgFile, JSON.stringify({ ...cfg, max_position_embeddings: 4096 }));
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    await cp(path.join(TOKENIZER, f), path.join(modelDir, f));
  fullRun = path.join(tmp, 'full');
  const r = await trainChild(fullRun);
  assert.equal(r.code, 0, `the uninterrupted run failed: ${r.err}`);
  assert.match(r.out, /STEP 1\nSTEP 2\nSTEP 3\nDONE/);
  const m = await metrics(fullRun);
  assert.ok(
    m.some((x) => typeof x.gradNorm === 'number' && x.gradNorm > 0 && (x.lr as number) > 0),
    'the reference run must make at least one real update',
  );
});
after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function assertSameAsFullRun(runDir: string): Promise<void> {
  assert.deepEqual(await metrics(runDir), await metrics(fullRun), 'metrics (timings left out)');
  assert.equal(
    await readFile(path.join(runDir, 'samples.jsonl'), 'utf8'),
    await readFile(path.join(fullRun, 'samples.jsonl'), 'utf8'),
    'sampled trajectories',
  );
  for (const f of ['adapter_model.safetensors', 'optimizer.safetensors'])
    assert.deepEqual(
      await readFile(path.join(runDir, 'checkpoints', `step-${STEPS}`, f)),
      await readFile(path.join(fullRun, 'checkpoints', `step-${STEPS}`, f)),
      f,
    );
}

describe('SIGKILL at several moments, then --resume', { skip: SKIP }, () => {
  // Two generate calls a step (round 1, round 2); the 3rd is step 2's first rollout.
  const cases: Array<[string, KillPoint]> = [
    ['during a rollout (inside generate)', { at: 'generate', call: 3 }],
    ['during the optimizer step', { at: 'optimizerStep', call: 2 }],
    ['during a checkpoint write', { at: 'checkpoint', call: 2 }],
  ];
  for (const [name, killAt] of cases) {
    it(`${name}: resumes from the last complete checkpoint and matches the uninterrupted run`, async () => {
      const runDir = path.join(tmp, `kill-${killAt.at}`);
      const killed = await trainChild(runDir, { killAt });
      assert.equal(killed.signal, 'SIGKILL', `the child was meant to die: ${killed.code} ${killed.err}`);
      assert.match(killed.out, /KILL\n$/);
      const names = await readdir(path.join(runDir, 'checkpoints'));
      const complete = names.filter((n) => !n.startsWith('.'));
      // step 1's checkpoint is complete; step 2 never appears under its final name
      assert.deepEqual(complete, ['step-1']);
      if (killAt.at === 'checkpoint')
        assert.ok(
          names.some((n) => n.startsWith('.step-2.tmp-')),
          `the half-written checkpoint should be left in a temporary folder: ${names}`,
        );
      assert.equal((await latestCheckpoint(runDir))?.step, 1);

      const resumed = await trainChild(runDir, { resume: true });
      assert.equal(resumed.code, 0, resumed.err);
      assert.match(resumed.out, /^STEP 2\nSTEP 3\nDONE/);
      assert.deepEqual(
        (await readdir(path.join(runDir, 'checkpoints'))).sort(),
        ['step-1', 'step-2', 'step-3'],
        'the temporary folder of the killed write is cleaned up on resume',
      );
      await assertSameAsFullRun(runDir);
    });
  }
});

describe('Ctrl-C during `motif-native train`', { skip: SKIP }, () => {
  it('finishes the step, writes a final checkpoint, exits 130; --resume completes the run', async () => {
    const data = path.join(tmp, 'questions.jsonl');
    await writeFile(
      data,
      faultRows(3)
        .map((r) => JSON.stringify({ question: r.question, answer: r.answer }))
        .join('\n'),
    );
    const runDir = path.join(tmp, 'sigint');
    const args = [
      'lib/cli/cli.ts',
      'train',
      '--model',
      modelDir,
      '--dataset',
      data,
      '--dataset-kind',
      'generic',
      '--run-dir',
      runDir,
      '--device',
      'cpu',
      '--threads',
      '1',
      '--steps',
      '4',
      '--save-every',
      '100',
      '--batch-size',
      '1',
      '--num-generations',
      '2',
      '--trajectories',
      '1',
      '--rounds',
      '2',
      '--max-tokens',
      '16',
      '--lora-r',
      '2',
    ];
    let sent = false;
    let poll: NodeJS.Timeout | undefined;
    const r = await runProcess(args, (child) => {
      // Interrupt as soon as step 1's metrics line is on disk (step 2 is then under way).
      poll = setInterval(async () => {
        const text = await readFile(path.join(runDir, 'metrics.jsonl'), 'utf8').catch(() => '');
        if (!sent && text.includes('"step":1')) {
          sent = true;
          child.kill('SIGINT');
        }
      }, 50);
    });
    clearInterval(poll);
    assert.ok(sent, `SIGINT was never sent: ${r.err}`);
    assert.equal(r.code, 130, `exit ${r.code} ${r.signal}: ${r.err}`);
    assert.match(r.out, /stopped: ([12])\/4 steps/);
    const stoppedAt = Number(/stopped: (\d)\/4/.exec(r.out)?.[1]);
    const ck = await latestCheckpoint(runDir);
    assert.equal(ck?.step, stoppedAt, 'a checkpoint of the last finished step is written on Ctrl-C');
    assert.equal((await metrics(runDir)).length, stoppedAt);

    const resumed = await runProcess([...args, '--resume']);
    assert.equal(resumed.code, 0, resumed.err);
    assert.match(resumed.out, /done: 4\/4 steps/);
    assert.deepEqual(
      (await metrics(runDir)).map((m) => m.step),
      [1, 2, 3, 4],
    );
  });
});
