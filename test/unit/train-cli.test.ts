// `motif-native train` and `eval` on the command line: --help documents every flag with the paper's
// defaults; no --model runs the built-in demo (tested in test/addon/demo.test.ts), which refuses
// --dataset and says to pass --model; bad flags, config files
// and data files give errors that name them; --config merges under the command line; a full
// train -> resume -> eval round trip through the commands on the fake model writes the run folder.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';

import { evalCommand, runEval } from '../../lib/cli/commands/EvalCommand.js';
import { runTrain, trainCommand } from '../../lib/cli/commands/TrainCommand.js';
import { resolveTrainValues, TRAIN_FLAGS } from '../../lib/train/flags.js';
import { fakeModel, fakeRows } from '../helpers/fake-trainable.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let tmp: string;
let dataFile: string;
const rows = fakeRows(6);

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-cli-'));
  dataFile = path.join(tmp, 'questions.jsonl');
  await writeFile(
    dataFile,
    rows.map((r) => JSON.stringify({ id: r.id, question: r.question, answer: r.answer })).join('\n'),
  );
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

type Deps = { loadModel: () => Promise<unknown> };

/** Parses and runs one command line in-process, with the model loader replaced; returns what it printed. */
async function cli(args: string[], deps: Deps = { loadModel: async () => fakeModel(rows) }): Promise<string> {
  const printed: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => printed.push(a.join(' '));
  try {
    await yargs(args)
      .command({ ...trainCommand, handler: (a) => runTrain(a as Record<string, unknown>, deps) })
      .command({ ...evalCommand, handler: (a) => runEval(a, deps) })
      .strict()
      .exitProcess(false)
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseAsync();
  } finally {
    console.log = log;
  }
  return printed.join('\n');
}

const SMALL = ['--steps', '2', '--num-generations', '2', '--trajectories', '1', '--rounds', '2', '--lora-r', '2'];
const SMALL2 = [
  '--lora-targets',
  'q_proj,down_proj',
  '--max-tokens',
  '100',
  '--save-every',
  '1',
  '--lr',
  '0.01',
  '--quiet',
];

describe('train --help and the no-model message (through bin/cli.ts)', () => {
  it('documents every flag, its default, and the YAML limitation', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'lib/cli/cli.ts', 'train', '--help'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const help = r.stdout.replace(/\s+/g, ' ');
    for (const f of [...TRAIN_FLAGS.map((x) => x.name), 'config'])
      assert.ok(help.includes(`--${f}`), `--help lacks --${f}`);
    assert.match(help, /--num-generations .*\[default: 8\]/);
    assert.match(help, /--lora-r .*\[default: 64\]/);
    assert.match(help, /--lr .*\[default: 0\.000005\]|--lr .*\[default: 5e-6\]/);
    assert.match(help, /YAML is not supported/);
  });

  it('with --dataset but no --model, says the built-in demo has its own data and to pass --model', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'lib/cli/cli.ts', 'train', '--dataset', 'x.jsonl'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /--dataset needs --model: the built-in demo \(no --model\) trains on its own generated task/,
    );
  });
});

describe('flags and config files', () => {
  it('rejects bad flags with the flag named', async () => {
    await assert.rejects(cli(['train', '--loss-type', 'ppo']), /loss-type/);
    await assert.rejects(
      cli(['train', '--model', 'm', '--dataset', dataFile, '--num-generations', '1']),
      /--num-generations: expected an integer >= 2, got 1/,
    );
    await assert.rejects(
      cli(['train', '--model', 'm', '--dataset', dataFile, '--lr', 'fast']),
      /--lr: expected a number/,
    );
    await assert.rejects(
      cli(['train', '--model', 'm', '--dataset', dataFile, '--lora-targets', 'q_proj,lm_head']),
      /--lora-targets/,
    );
    await assert.rejects(cli(['train', '--bogus-flag']), /Unknown arguments?: bogus-flag/);
    await assert.rejects(cli(['train', '--resume']), /--resume needs --run-dir/);
    await assert.rejects(cli(['train', '--model', 'm']), /--dataset FILE is required/);
    await assert.rejects(cli(['train', '--model', 'm', '--dataset', path.join(tmp, 'none.jsonl')]), /none\.jsonl/);
  });

  it('merges --config under the command line and checks its keys', async () => {
    const cfg = path.join(tmp, 'cfg.json');
    await writeFile(
      cfg,
      JSON.stringify({ numGenerations: 4, 'lora-r': 16, lr: 0.001, loraTargets: ['q_proj', 'v_proj'] }),
    );
    const { config, values } = await resolveTrainValues({ config: cfg, lr: 0.002, 'lora-alpha': 8 });
    assert.equal(config.numGenerations, 4);
    assert.equal(config.lr, 0.002);
    assert.deepEqual(config.lora, { rank: 16, alpha: 8, targets: ['q_proj', 'v_proj'], rslora: false });
    assert.equal(config.trajectories, 4, 'unset settings keep the defaults');
    assert.match(String(values['run-dir']), /^runs[/\\]motif-\d{8}-\d{6}$/);
    await writeFile(cfg, JSON.stringify({ numGenerations: 4, learningRate: 1 }));
    await assert.rejects(resolveTrainValues({ config: cfg }), /cfg\.json: unknown setting "learningRate"/);
    await writeFile(cfg, JSON.stringify({ steps: 'ten' }));
    await assert.rejects(resolveTrainValues({ config: cfg }), /cfg\.json: "steps": expected a number/);
    await writeFile(cfg, '{ "steps": ');
    await assert.rejects(resolveTrainValues({ config: cfg }), /cfg\.json: not valid JSON/);
    await assert.rejects(
      resolveTrainValues({ config: path.join(tmp, 'c.yaml') }),
      /YAML config files need a YAML parser/,
    );
  });

  it('says when the engine has no training API', async () => {
    let disposed = false;
    const dispose = async () => {
      disposed = true;
    };
    const plain = { loadModel: async () => ({ dispose }) };
    await assert.rejects(cli(['train', '--model', 'm', '--dataset', dataFile], plain), /no training API yet/);
    assert.ok(disposed);
  });
});

describe('train -> resume -> eval through the commands', () => {
  it('writes the run folder, resumes with the run settings, evaluates the adapter', async () => {
    const runDir = path.join(tmp, 'run');
    const out = await cli([
      'train',
      '--model',
      'fake',
      '--dataset',
      dataFile,
      '--run-dir',
      runDir,
      ...SMALL,
      ...SMALL2,
    ]);
    assert.match(out, /done: 2\/2 steps; run folder/);
    assert.match(out, /adapter \(PEFT\): .*adapter/);
    const manifest = JSON.parse(await readFile(path.join(runDir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.config.numGenerations, 2);
    assert.equal(manifest.cli.dataset, dataFile);
    assert.equal(manifest.model.base, 'fake');
    // --resume with only the run folder: every other setting comes from the run's manifest.
    const again = await cli(['train', '--resume', '--run-dir', runDir, '--quiet']);
    assert.match(again, /done: 2\/2 steps/);
    await assert.rejects(
      cli(['train', '--resume', '--run-dir', runDir, '--lr', '0.5', '--quiet']),
      /settings differ.*lr: 0\.01 -> 0\.5/,
    );

    const evalOut = path.join(tmp, 'eval.jsonl');
    const ev = await cli([
      'eval',
      '--model',
      'fake',
      '--adapter',
      path.join(runDir, 'adapter'),
      '--dataset',
      dataFile,
      '--rounds',
      '2',
      '--limit',
      '4',
      '--out',
      evalOut,
      '--quiet',
    ]);
    assert.match(ev, /4 problems, 2 round\(s\), greedy/);
    assert.match(ev, /pass@1 strict .*\d+\.\d%/);
    assert.match(ev, /pass@1 match/);
    assert.equal((await readFile(evalOut, 'utf8')).trim().split('\n').length, 4);
    await assert.rejects(cli(['eval', '--model', 'fake', '--dataset', dataFile, '--rounds', '0']), /--rounds/);
  });
});
