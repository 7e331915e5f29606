/**
 * train.ts — `npm run bench -- train`: one LoRA-GRPO training step (forward + backward + AdamW) on a
 * model with Qwen2.5-0.5B-Instruct's shapes (random bf16 weights), LoRA r 64 / alpha 64 on all seven
 * projections, through motif-native and through PyTorch (Debian's python3-torch, CPU, float32
 * weights; bench/peers/torch_train.py) side by side, each in its own process, with peak memory.
 * With --full: one full-parameter SFT step instead (every weight trained, f32 master weights and
 * AdamW state on both sides; `sft --full`'s step).
 *
 *   npm run bench -- train [--sequences 4] [--prompt-tokens 32] [--completion-tokens 32]
 *     [--threads N] [--runs 3] [--peer-runs 2] [--peer torch|none] [--full] [--json]
 *
 * Training tokens/s counts every token of the packed sequences (prompt + completion) per step.
 */
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadModel } from '../lib/index.js';
import { packageRoot } from '../lib/native/binding.js';
import type { GrpoBatch } from '../lib/train/types.js';
import { machineInfo, median } from './machine.js';
import { questionPrompt } from './peers/llama-cpp.js';
import { ensureRandomModel, QWEN25_05B } from './random-model.js';

const RESULT_MARK = '@@motif-train-result ';
const THIS_FILE = fileURLToPath(import.meta.url);
const ALL = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

function makeBatch(sequences: number, promptTokens: number, completionTokens: number, vocab: number): GrpoBatch {
  const groups = Math.max(1, sequences / 2);
  return {
    promptIds: Array.from({ length: groups }, (_, g) => questionPrompt(7, g, promptTokens, vocab)),
    completionIds: Array.from({ length: sequences }, (_, i) => questionPrompt(8, i, completionTokens, vocab)),
    rewards: Array.from({ length: sequences }, (_, i) => i % 3),
    groupSize: sequences / groups,
    lossType: 'grpo',
    epsilon: 0.2,
    beta: 0,
    temperature: 1,
  };
}

async function oursInProcess(o: { model: string; threads: number; runs: number; batch: GrpoBatch; full: boolean }) {
  const model = await loadModel(o.model, { device: 'cpu', threads: o.threads, tokenizer: false });
  if (o.full) await model.enableFullTraining();
  else await model.createLora({ rank: 64, alpha: 64, targets: ALL, rslora: false, seed: 1 });
  const opt = { lr: 5e-6, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 0.1 };
  const step = async () => {
    const t0 = performance.now();
    // The trainers' call: the gradients go to the accumulators, not back to JS.
    await model.lossAndGradients(o.batch, { accumulate: true, gradients: false });
    await model.optimizerStep(opt);
    return (performance.now() - t0) / 1000;
  };
  await step();
  const times: number[] = [];
  for (let r = 0; r < o.runs; r++) times.push(await step());
  await model.dispose();
  return { seconds: median(times), runs: times, peakRssBytes: process.resourceUsage().maxRSS * 1024 };
}

function runChild(opts: object): Promise<{ seconds: number; runs: number[]; peakRssBytes: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', THIS_FILE, '--child'], {
      cwd: packageRoot,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT_MARK));
      if (code === 0 && line) resolve(JSON.parse(line.slice(RESULT_MARK.length)));
      else reject(new Error(`train bench child failed (${code}): ${err.trim().split('\n').slice(-8).join('\n')}`));
    });
    child.stdin.end(JSON.stringify(opts));
  });
}

export async function benchTrain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      sequences: { type: 'string', default: '4' },
      'prompt-tokens': { type: 'string', default: '32' },
      'completion-tokens': { type: 'string', default: '32' },
      threads: { type: 'string', default: String(os.availableParallelism()) },
      runs: { type: 'string', default: '3' },
      'peer-runs': { type: 'string', default: '2' },
      peer: { type: 'string', default: 'torch' },
      full: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const log = (s: string) => {
    if (!values.json) console.log(s);
  };
  const threads = Number(values.threads);
  const sequences = Number(values.sequences);
  if (!Number.isInteger(sequences) || sequences < 2 || sequences % 2)
    throw new Error('--sequences must be an even integer >= 2');
  const dir = await ensureRandomModel(
    path.join(packageRoot, 'bench', '.generated', 'qwen2.5-0.5b-random-bf16'),
    QWEN25_05B,
    'bf16',
  );
  const full = values.full === true;
  const batch: GrpoBatch = {
    ...makeBatch(sequences, Number(values['prompt-tokens']), Number(values['completion-tokens']), QWEN25_05B.vocab),
    ...(full ? { lossType: 'sft' } : {}),
  };
  const tokens = sequences * (Number(values['prompt-tokens']) + Number(values['completion-tokens']));
  const machine = machineInfo();
  log(`machine: ${machine.cpu}, ${machine.cores} cores; commit ${machine.commit}; ${threads} threads`);
  log(
    `step: ${sequences} sequences x (${values['prompt-tokens']} prompt + ${values['completion-tokens']} completion) = ${tokens} tokens, ${full ? 'full-parameter SFT (every weight)' : 'LoRA-GRPO, r64 on all projections'}`,
  );
  const ours = await runChild({ model: dir, threads, runs: Number(values.runs), batch, full });
  log(
    `motif-native: ${(tokens / ours.seconds).toFixed(1)} tokens/s (step ${ours.seconds.toFixed(2)} s, median of ${values.runs}), peak RSS ${(ours.peakRssBytes / 2 ** 20).toFixed(0)} MiB`,
  );
  let peer: { seconds: number; peakRssBytes: number; torch: string; runs: number[] } | undefined;
  if (values.peer === 'torch') {
    const batchFile = path.join(packageRoot, 'bench', '.generated', 'train-batch.json');
    writeFileSync(batchFile, JSON.stringify(batch));
    try {
      const out = execFileSync(
        process.env.MOTIF_TORCH_PYTHON ?? '/usr/bin/python3',
        [
          path.join(packageRoot, 'bench', 'peers', 'torch_train.py'),
          '--model',
          dir,
          '--batch',
          batchFile,
          '--threads',
          String(threads),
          '--runs',
          String(values['peer-runs']),
          ...(full ? ['--full'] : []),
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 24 },
      );
      peer = JSON.parse(out.trim().split('\n').pop() as string);
    } catch (err) {
      log(
        `peer: PyTorch not measured: ${((err as { stderr?: string }).stderr || (err as Error).message).trim().split('\n').pop()}`,
      );
    }
    if (peer)
      log(
        `PyTorch ${peer.torch}: ${(tokens / peer.seconds).toFixed(1)} tokens/s (step ${peer.seconds.toFixed(2)} s, median of ${values['peer-runs']}), peak RSS ${(peer.peakRssBytes / 2 ** 20).toFixed(0)} MiB; ` +
          `ratio ${(peer.seconds / ours.seconds).toFixed(2)}x speed, ${(ours.peakRssBytes / peer.peakRssBytes).toFixed(2)}x memory`,
      );
  }
  if (values.json) console.log(JSON.stringify({ bench: 'train', machine, threads, tokens, full, ours, peer }, null, 2));
}

if (process.argv[1] === THIS_FILE && process.argv[2] === '--child') {
  let input = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) input += chunk;
  const r = await oursInProcess(JSON.parse(input));
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(r)}\n`);
  process.exit(0);
}
