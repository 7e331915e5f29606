// A run killed with SIGKILL in the middle of a step (a child process training the fake model, hung
// inside its 4th loss call) resumes from its last complete checkpoint and reproduces the
// uninterrupted run's metrics and final adapter exactly (the fake model is deterministic).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { latestCheckpoint } from '../../lib/train/run-dir.js';
import { train } from '../../lib/train/trainer.js';
import { fakeModel, fakeRows, fastSettings } from '../helpers/fake-trainable.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-resume-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const ROWS = 8;
const STEPS = 6;

async function metrics(runDir: string): Promise<Record<string, unknown>[]> {
  return (await readFile(path.join(runDir, 'metrics.jsonl'), 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const { timing: _t, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return rest;
    });
}

/** Trains in a child process that hangs in loss call `hangAt`; SIGKILLs it there. Returns its stdout. */
function trainAndKill(runDir: string, hangAt: number): Promise<string> {
  const spec = JSON.stringify({ rows: ROWS, runDir, steps: STEPS, saveEvery: 2, hangAtLossCall: hangAt });
  const script = fileURLToPath(new URL('../helpers/fake-trainable.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, spec], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the child did not reach its hang point in time; stdout ${out} stderr ${err}`));
    }, 30_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('HANG')) child.kill('SIGKILL');
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL' && out.includes('HANG')) resolve(out);
      else reject(new Error(`child exited (${code}, ${signal}) without hanging: ${out} ${err}`));
    });
  });
}

describe('resume after SIGKILL', () => {
  it('continues from the last checkpoint and reproduces the uninterrupted run', async () => {
    const rows = fakeRows(ROWS);
    const full = path.join(tmp, 'full');
    await train(fakeModel(rows), {
      ...fastSettings(),
      steps: STEPS,
      saveEvery: 2,
      dataset: rows,
      runDir: full,
      log: () => {},
    });

    const killed = path.join(tmp, 'killed');
    const out = await trainAndKill(killed, 4);
    assert.match(out, /STEP 1\nSTEP 2\nSTEP 3\nHANG/);
    assert.equal((await metrics(killed)).length, 3, 'step 3 was logged before the kill');
    assert.deepEqual(await readdir(path.join(killed, 'checkpoints')), ['step-2']);
    assert.equal((await latestCheckpoint(killed))?.step, 2);

    const r = await train(fakeModel(rows), {
      ...fastSettings(),
      steps: STEPS,
      saveEvery: 2,
      dataset: rows,
      runDir: killed,
      resume: true,
      log: () => {},
    });
    assert.equal(r.stepsCompleted, STEPS);
    assert.deepEqual(await metrics(killed), await metrics(full));
    for (const f of ['adapter_model.safetensors', 'optimizer.safetensors'])
      assert.deepEqual(
        await readFile(path.join(killed, 'checkpoints', 'step-6', f)),
        await readFile(path.join(full, 'checkpoints', 'step-6', f)),
        f,
      );
    const samples = (dir: string) =>
      readFile(path.join(dir, 'samples.jsonl'), 'utf8').then((t) =>
        t
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
      );
    assert.deepEqual(await samples(killed), await samples(full));
  });
});
