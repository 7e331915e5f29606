/**
 * real-train-child.ts — a training run on a tiny REAL model (the engine on the CPU, the Qwen2.5
 * tokenizer), in its own process, for the fault tests (test/unit/train-faults.test.ts).
 *
 *   node --import tsx test/helpers/real-train-child.ts '<json spec>'
 *
 * The spec names the model folder, the run folder, the run's settings, and optionally where to
 * die: `killAt: { at: 'generate' | 'optimizerStep' | 'checkpoint', call: n }` sends SIGKILL to this
 * process in the n-th generate call (while the engine is sampling), the n-th optimizer step (while
 * the native AdamW runs), or the n-th checkpoint write (after its adapter files are written, before
 * its optimizer file). It prints `STEP n` after each step and `KILL` just before dying.
 */
import { writeSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DatasetRow } from '../../lib/data/datasets.js';
import { loadModel, type Model } from '../../lib/index.js';
import type { RewardFn } from '../../lib/motif/rewards.js';
import { OPTIMIZER_FILE, runDirTestHooks } from '../../lib/train/run-dir.js';
import { type TrainOptions, train } from '../../lib/train/trainer.js';

export interface KillPoint {
  at: 'generate' | 'optimizerStep' | 'checkpoint';
  call: number;
}

export interface ChildSpec {
  modelDir: string;
  runDir: string;
  settings: Omit<Partial<TrainOptions>, 'dataset'> & Pick<TrainOptions, 'dataset'>;
  resume?: boolean;
  killAt?: KillPoint;
}

/** The questions every fault run trains on. */
export function faultRows(n: number): DatasetRow[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `q${i}`,
    question: `What is ${i} + ${2 * i + 1}?`,
    answer: String(3 * i + 1),
    source: { file: 'faults.jsonl', line: i + 1 },
    meta: {},
  }));
}

/**
 * A reward that varies with the sampled text (a random model never earns the real ones), so the
 * groups have non-zero advantages and every step makes a real update: the response's UTF-16 code
 * units summed, mod 7, over 6.
 */
export const textHashReward: RewardFn = {
  name: 'text_hash',
  weight: 1,
  score: (batch) =>
    batch.map((x) => {
      let h = 0;
      for (let i = 0; i < x.response.length; i++) h += x.response.charCodeAt(i);
      return (h % 7) / 6;
    }),
};

function die(): never {
  writeSync(1, 'KILL\n');
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable: SIGKILL did not end the process');
}

/** The model, with the chosen call replaced by one that starts the real work and then dies. */
function withKill(model: Model, kill: KillPoint | undefined): Model {
  if (!kill) return model;
  let calls = 0;
  if (kill.at === 'checkpoint') {
    runDirTestHooks.beforeWrite = (file) => {
      if (path.basename(file) === OPTIMIZER_FILE && ++calls === kill.call) die();
    };
    return model;
  }
  return new Proxy(model, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (prop !== kill.at) return value.bind(target);
      return (...args: unknown[]) => {
        const running = value.apply(target, args) as Promise<unknown>;
        if (++calls === kill.call) setImmediate(die); // the native call is in flight on its worker thread
        return running;
      };
    },
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as ChildSpec;
  const model = await loadModel(spec.modelDir, { device: 'cpu', threads: 1, kvCacheBytes: 4 << 20 });
  await train(withKill(model, spec.killAt), {
    ...spec.settings,
    runDir: spec.runDir,
    resume: spec.resume === true,
    rewards: [textHashReward],
    log: () => {},
    onStep: (m) => {
      writeSync(1, `STEP ${m.step}\n`);
    },
  });
  await model.dispose();
  writeSync(1, 'DONE\n');
}
