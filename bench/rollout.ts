/**
 * rollout.ts — `npm run bench -- rollout`: the MOTIF-shaped rollout workload on motif-native and on
 * llama.cpp (node-llama-cpp 3.21.1, prebuilt CPU binary) with the same weights (exported to GGUF at
 * the same precision), the same threads and the same prompts, side by side with their ratio; plus
 * batch-1 (and batch-8) decode against the memory-bandwidth roofline.
 *
 *   npm run bench -- rollout [--model DIR] [--questions 2] [--generations 4] [--trajectories 2]
 *     [--rounds 3] [--prompt-tokens 256] [--round-tokens 32] [--threads N] [--runs 3]
 *     [--dtype bf16|f16|f32] [--peer llama|none] [--decode-tokens 32] [--weights auto|map|read] [--json]
 *
 * --weights is how motif-native loads the weight files (LoadModelOptions.weights: 'read' copies them
 * into huge-page memory, the CPU default; 'map' memory-maps them), for A/B runs of the two.
 *
 * Each engine runs in its own child process (peak RSS is its own); each figure is the median of
 * --runs runs. Roofline for decode: weight bytes read per step / measured read bandwidth.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { exportGguf } from '../lib/export/exportGguf.js';
import { loadModel } from '../lib/index.js';
import { packageRoot } from '../lib/native/binding.js';
import { machineInfo, measureRoofline } from './machine.js';
import { runMotifDecode, runMotifRollout } from './motif-rollout.js';
import { runLlamaCppDecode, runLlamaCppRollout } from './peers/llama-cpp.js';
import { type BenchDtype, ensureRandomModel, QWEN25_05B } from './random-model.js';

/** The run whose tokensPerSecond is the median (the lower middle one for an even count). */
function medianRun<T extends { tokensPerSecond: number }>(runs: T[]): T {
  const sorted = [...runs].sort((a, b) => a.tokensPerSecond - b.tokensPerSecond);
  return sorted[(sorted.length - 1) >> 1];
}

export async function benchRollout(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      questions: { type: 'string', default: '2' },
      generations: { type: 'string', default: '4' },
      trajectories: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '3' },
      'prompt-tokens': { type: 'string', default: '256' },
      'round-tokens': { type: 'string', default: '32' },
      threads: { type: 'string', default: String(os.availableParallelism()) },
      runs: { type: 'string', default: '3' },
      dtype: { type: 'string', default: 'bf16' },
      peer: { type: 'string', default: 'llama' },
      'decode-tokens': { type: 'string', default: '32' },
      seed: { type: 'string', default: '1' },
      weights: { type: 'string', default: 'auto' },
      json: { type: 'boolean', default: false },
    },
  });
  const int = (k: keyof typeof values) => {
    const n = Number(values[k]);
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`--${String(k)} must be a non-negative integer, got ${String(values[k])}`);
    return n;
  };
  const dtype = values.dtype as BenchDtype;
  if (!['f32', 'f16', 'bf16'].includes(dtype)) throw new Error(`--dtype must be f32, f16 or bf16`);
  const weights = values.weights as 'auto' | 'map' | 'read';
  if (!['auto', 'map', 'read'].includes(weights)) throw new Error('--weights must be auto, map or read');
  const threads = int('threads');
  const runs = Math.max(1, int('runs'));
  const log = (s: string) => {
    if (!values.json) console.log(s);
  };
  const dir =
    values.model ??
    (await ensureRandomModel(
      path.join(packageRoot, 'bench', '.generated', `qwen2.5-0.5b-random-${dtype}`),
      QWEN25_05B,
      dtype,
    ));
  const shape = {
    questions: int('questions'),
    generations: int('generations'),
    trajectories: int('trajectories'),
    rounds: int('rounds'),
    promptTokens: int('prompt-tokens'),
    roundTokens: int('round-tokens'),
    progressTokens: 32,
    seed: int('seed'),
  };
  const machine = machineInfo();
  const roof = measureRoofline(threads);
  const probe = await loadModel(dir, { device: 'cpu', threads: 1, tokenizer: false });
  const weightBytes = probe.info.weightBytes;
  await probe.dispose();
  log(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; commit ${machine.commit}; ${threads} threads`,
  );
  log(
    `roofline: read ${roof.readBandwidthGBs.toFixed(1)} GB/s, fp32 FMA ${roof.fmaPeakGflops.toFixed(0)} GFLOP/s; weights ${(weightBytes / 2 ** 20).toFixed(0)} MiB (${dtype})`,
  );
  log(`workload: ${JSON.stringify(shape)}; motif-native weights: ${weights}`);

  let gguf: string | undefined;
  if (values.peer === 'llama') {
    gguf = path.join(path.dirname(dir), `${path.basename(dir)}.${dtype}.gguf`);
    if (!existsSync(gguf)) {
      log(`exporting ${gguf} ...`);
      await exportGguf({ modelDir: dir, outFile: gguf, dtype });
    }
  }

  const oursRuns = [];
  const peerRuns = [];
  for (let r = 0; r < runs; r++) {
    oursRuns.push(await runMotifRollout({ model: dir, threads, weights, kvCacheBytes: 1 << 30, ...shape }));
    log(`  run ${r + 1}: motif-native ${oursRuns[r].tokensPerSecond.toFixed(1)} tok/s`);
    if (gguf) {
      peerRuns.push(await runLlamaCppRollout({ gguf, threads, ...shape }));
      log(`  run ${r + 1}: llama.cpp    ${peerRuns[r].tokensPerSecond.toFixed(1)} tok/s`);
    }
  }
  const ours = medianRun(oursRuns);
  const peer = peerRuns.length ? medianRun(peerRuns) : undefined;
  const ratio = peer ? ours.tokensPerSecond / peer.tokensPerSecond : undefined;
  const row = (
    name: string,
    x: {
      tokensPerSecond: number;
      prefillTokensPerSecond: number;
      prefixCacheHitRate: number;
      peakRssBytes: number;
      generatedTokens: number;
      seconds: number;
    },
  ) =>
    log(
      `${name.padEnd(13)} ${x.tokensPerSecond.toFixed(1).padStart(7)} tok/s generated (${x.generatedTokens} in ${x.seconds.toFixed(1)} s), ` +
        `prefill ${x.prefillTokensPerSecond.toFixed(0)} tok/s, prefix-cache hits ${(x.prefixCacheHitRate * 100).toFixed(0)}%, ` +
        `peak RSS ${(x.peakRssBytes / 2 ** 20).toFixed(0)} MiB`,
    );
  log(`rollout (median of ${runs}):`);
  row('motif-native', ours);
  if (peer) row('llama.cpp', peer);
  if (ratio) log(`ratio: motif-native / llama.cpp = ${ratio.toFixed(2)}x`);

  // Decode against the bandwidth roofline.
  const decode: object[] = [];
  for (const batch of [1, 8]) {
    const o = [];
    const p = [];
    for (let r = 0; r < runs; r++) {
      o.push(
        await runMotifDecode({ model: dir, threads, weights, batch, tokens: int('decode-tokens'), seed: shape.seed }),
      );
      if (gguf) p.push(await runLlamaCppDecode({ gguf, threads, batch, tokens: int('decode-tokens') }));
    }
    const om = medianRun(o);
    const pm = p.length ? medianRun(p) : undefined;
    const floorTokS = (roof.readBandwidthGBs * 1e9) / weightBytes; // steps/s when bound by reading the weights
    const fraction = batch === 1 ? om.tokensPerSecond / floorTokS : undefined;
    decode.push({
      batch,
      motif: om,
      peer: pm,
      roofline: batch === 1 ? floorTokS : undefined,
      fractionOfRoofline: fraction,
    });
    log(
      `decode batch ${batch}: motif-native ${om.tokensPerSecond.toFixed(1)} tok/s` +
        (pm
          ? `, llama.cpp ${pm.tokensPerSecond.toFixed(1)} tok/s (ratio ${(om.tokensPerSecond / pm.tokensPerSecond).toFixed(2)}x)`
          : '') +
        (fraction !== undefined
          ? `; bandwidth roofline ${floorTokS.toFixed(1)} tok/s, ${(fraction * 100).toFixed(0)}% reached`
          : ''),
    );
  }
  if (values.json) {
    console.log(
      JSON.stringify(
        {
          bench: 'rollout',
          machine,
          roofline: roof,
          dtype,
          threads,
          workload: shape,
          weights,
          ...ours,
          peer,
          ratio,
          runs: { ours: oursRuns, peer: peerRuns },
          decode,
        },
        null,
        2,
      ),
    );
  }
}
