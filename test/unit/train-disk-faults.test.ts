/**
 * train-disk-faults.test.ts — an unwritable run folder or a full disk is reported clearly, before
 * work is lost (on the fake model; the faults are injected through run-dir.ts's write hook, since a
 * real full disk needs root, and a read-only folder does not stop root).
 *
 * - The folder is probed at startup: a failing probe stops `train` before any step, naming the folder.
 * - A checkpoint write that fails (ENOSPC) fails the run with a message naming the checkpoint and the
 *   last complete one; that one is intact, no temporary folder is left, and --resume later completes
 *   the run with the same metrics as an uninterrupted one.
 * - A failing metrics append names metrics.jsonl.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { MotifError } from '../../lib/native/errors.js';
import { latestCheckpoint, OPTIMIZER_FILE, runDirTestHooks } from '../../lib/train/run-dir.js';
import { type TrainOptions, train } from '../../lib/train/trainer.js';
import { fakeModel, fakeRows, fastSettings } from '../helpers/fake-trainable.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-disk-faults-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});
afterEach(() => {
  runDirTestHooks.beforeWrite = undefined;
});

const rows = fakeRows(8);
const opts = (runDir: string, over: Partial<TrainOptions> = {}): TrainOptions => ({
  ...fastSettings(),
  steps: 6,
  saveEvery: 2,
  dataset: rows,
  runDir,
  log: () => {},
  ...over,
});
const errno = (code: string) => Object.assign(new Error(`${code}: simulated`), { code });
const ioError =
  (...needles: string[]) =>
  (e: unknown) =>
    e instanceof MotifError && e.code === 'ERR_MOTIF_IO' && needles.every((n) => e.message.includes(n));
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );
const stable = async (runDir: string) =>
  (await readFile(path.join(runDir, 'metrics.jsonl'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const { timing: _t, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return rest;
    });

describe('unwritable run folder', () => {
  it('is reported at startup, before any step, naming the folder', async () => {
    const runDir = path.join(tmp, 'probe');
    let steps = 0;
    runDirTestHooks.beforeWrite = (file) => {
      if (path.basename(file).startsWith('.write-probe-')) throw errno('EACCES');
    };
    await assert.rejects(
      train(fakeModel(rows), opts(runDir, { onStep: () => void steps++ })),
      ioError(runDir, 'not writable', 'EACCES'),
    );
    assert.equal(steps, 0);
    assert.equal(await exists(path.join(runDir, 'metrics.jsonl')), false);
    assert.equal(await exists(path.join(runDir, 'manifest.json')), false);
  });

  it('a read-only folder (without root) is reported the same way', {
    skip: process.getuid?.() === 0 && 'root may write into a read-only folder',
  }, async () => {
    const runDir = path.join(tmp, 'readonly');
    await mkdir(path.join(runDir, 'checkpoints'), { recursive: true });
    await chmod(runDir, 0o555);
    try {
      await assert.rejects(train(fakeModel(rows), opts(runDir)), ioError(runDir, 'not writable'));
    } finally {
      await chmod(runDir, 0o755);
    }
  });
});

describe('full disk', () => {
  it('a failed checkpoint write fails the run naming it; the previous checkpoint stays intact; --resume completes', async () => {
    const full = path.join(tmp, 'uninterrupted');
    await train(fakeModel(rows), opts(full));

    const runDir = path.join(tmp, 'enospc');
    runDirTestHooks.beforeWrite = (file) => {
      if (file.includes(`${path.sep}.step-4.tmp-`) && path.basename(file) === OPTIMIZER_FILE) throw errno('ENOSPC');
    };
    await assert.rejects(
      train(fakeModel(rows), opts(runDir)),
      ioError(
        path.join(runDir, 'checkpoints', 'step-4'),
        'ENOSPC',
        `the last complete checkpoint is ${path.join(runDir, 'checkpoints', 'step-2')}`,
      ),
    );
    assert.deepEqual(await readdir(path.join(runDir, 'checkpoints')), ['step-2'], 'no temporary folder is left');
    assert.equal((await latestCheckpoint(runDir))?.step, 2);
    assert.deepEqual(
      await readFile(path.join(runDir, 'checkpoints', 'step-2', 'adapter_model.safetensors')),
      await readFile(path.join(full, 'checkpoints', 'step-2', 'adapter_model.safetensors')),
      'the previous checkpoint is intact',
    );

    runDirTestHooks.beforeWrite = undefined; // space freed
    const r = await train(fakeModel(rows), opts(runDir, { resume: true }));
    assert.equal(r.stepsCompleted, 6);
    assert.deepEqual(await stable(runDir), await stable(full));
  });

  it('a failed metrics append names metrics.jsonl', async () => {
    const runDir = path.join(tmp, 'metrics-enospc');
    let appends = 0;
    runDirTestHooks.beforeWrite = (file) => {
      if (path.basename(file) === 'metrics.jsonl' && ++appends === 3) throw errno('ENOSPC');
    };
    await assert.rejects(
      train(fakeModel(rows), opts(runDir)),
      ioError(path.join(runDir, 'metrics.jsonl'), 'cannot append', 'ENOSPC'),
    );
    assert.equal((await latestCheckpoint(runDir))?.step, 2);
  });
});
