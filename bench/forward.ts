/**
 * forward.ts — `npm run bench -- forward`: prefill throughput of the CPU forward pass on a model with
 * Qwen2.5-0.5B-Instruct's shapes and random weights, against this machine's roofline, and against
 * PyTorch (Debian's python3-torch, CPU, eager) on the same weights and threads when it is installed.
 *
 * For each prompt length T: median of --runs timed forwards (after one warm-up) of one T-token
 * sequence, logits for every position included (that is what model.forward returns).
 * FLOPs = 2*T*(linear params incl. LM head) + attention (4*H*D per query-key pair, causal);
 * bytes = weights read once + logits written. Floor = max(bytes / bandwidth, FLOPs / FMA peak).
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../lib/index.js';
import { packageRoot } from '../lib/native/binding.js';
import { machineInfo, measureRoofline, median } from './machine.js';
import { type BenchDtype, ensureRandomModel, linearParams, QWEN25_05B } from './random-model.js';

export async function benchForward(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      threads: { type: 'string', default: String(os.availableParallelism()) },
      tokens: { type: 'string', default: '64,256' },
      runs: { type: 'string', default: '5' },
      dtype: { type: 'string', default: 'bf16' },
      model: { type: 'string' },
      peer: { type: 'string', default: 'torch' },
      'peer-tokens': { type: 'string', default: '64' },
      json: { type: 'boolean', default: false },
    },
  });
  const threads = Number(values.threads);
  const runs = Number(values.runs);
  const dtype = values.dtype as BenchDtype;
  const tokenCounts = values.tokens.split(',').map(Number);
  if (!['f32', 'f16', 'bf16'].includes(dtype)) throw new Error(`--dtype must be f32, f16 or bf16, got ${dtype}`);
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`--threads must be a positive integer`);
  const shape = QWEN25_05B;
  const log = (s: string) => {
    if (!values.json) console.log(s);
  };
  const dir =
    values.model ??
    (await ensureRandomModel(
      path.join(packageRoot, 'bench', '.generated', `qwen2.5-0.5b-random-${dtype}`),
      shape,
      dtype,
    ));
  const machine = machineInfo();
  const roof = measureRoofline(threads);
  log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; commit ${machine.commit}`);
  log(
    `roofline (${threads} threads): read ${roof.readBandwidthGBs.toFixed(1)} GB/s, fp32 FMA peak ${roof.fmaPeakGflops.toFixed(1)} GFLOP/s`,
  );

  const model = await loadModel(dir, { device: 'cpu', threads });
  const weightBytes = model.info.weightBytes;
  const { perLayer, lmHead } = linearParams(shape);
  const D = shape.hidden / shape.heads;
  const results = [];
  for (const T of tokenCounts) {
    const tokens = Int32Array.from({ length: T }, (_, i) => (i * 7919) % shape.vocab);
    await model.forward(tokens); // warm-up: page in the weights
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = process.hrtime.bigint();
      await model.forward(tokens);
      times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    const seconds = median(times);
    const flops = 2 * T * (shape.layers * perLayer + lmHead) + shape.layers * 4 * shape.heads * D * ((T * (T + 1)) / 2);
    const bytes = weightBytes + T * shape.vocab * 4;
    const floor = Math.max(bytes / (roof.readBandwidthGBs * 1e9), flops / (roof.fmaPeakGflops * 1e9));
    const row = {
      tokens: T,
      seconds,
      tokensPerSecond: T / seconds,
      gflops: flops / seconds / 1e9,
      floorSeconds: floor,
      fractionOfRoofline: floor / seconds,
      runs: times,
    };
    results.push(row);
    log(
      `prefill T=${T}: ${row.tokensPerSecond.toFixed(1)} tok/s (median of ${runs}: ${seconds.toFixed(3)} s), ` +
        `${row.gflops.toFixed(1)} GFLOP/s, ${(row.fractionOfRoofline * 100).toFixed(0)}% of the roofline ` +
        `(floor ${floor.toFixed(3)} s)`,
    );
  }
  await model.dispose();

  let peer: Record<string, unknown> | undefined;
  if (values.peer === 'torch') {
    const T = Number(values['peer-tokens']);
    const ours = results.find((r) => r.tokens === T);
    try {
      const out = execFileSync(
        process.env.MOTIF_TORCH_PYTHON ?? '/usr/bin/python3',
        [
          path.join(packageRoot, 'bench', 'peers', 'torch_forward.py'),
          '--model',
          dir,
          '--tokens',
          String(T),
          '--threads',
          String(threads),
          '--runs',
          '3',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const p = JSON.parse(out) as { seconds: number; torch: string; runs: number[] };
      peer = {
        name: `PyTorch ${p.torch} eager, f32 compute`,
        tokens: T,
        seconds: p.seconds,
        tokensPerSecond: T / p.seconds,
        runs: p.runs,
      };
      if (ours) peer.ratio = p.seconds / ours.seconds;
      log(
        `peer: PyTorch ${p.torch} (CPU, eager, f32) T=${T}: ${(T / p.seconds).toFixed(1)} tok/s (median of 3: ${p.seconds.toFixed(3)} s)` +
          (ours ? `; motif-native is ${(p.seconds / ours.seconds).toFixed(2)}x its speed` : ''),
      );
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      log(`peer: PyTorch not measured: ${(e.stderr || e.message).trim().split('\n').pop()}`);
    }
  }
  if (values.json) {
    console.log(
      JSON.stringify({ bench: 'forward', machine, roofline: roof, dtype, model: dir, threads, results, peer }, null, 2),
    );
  }
}
