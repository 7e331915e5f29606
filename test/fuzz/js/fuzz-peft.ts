/**
 * fuzz-peft.ts — mutation fuzzer of the PEFT adapter reader (lib/train/peft.ts readAdapter):
 * adapter_config.json (JSON-value and byte mutations) and the adapter_model.safetensors header
 * (byte mutations) of a valid seed adapter. readAdapter must either return an adapter whose
 * tensors have the shapes the config implies, or throw a MotifError; anything else is a finding.
 *
 *   node --import tsx test/fuzz/js/fuzz-peft.ts [--seconds 30] [--runs N] [--seed N] [--findings DIR]
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ModelConfig } from '../../../lib/model/Model.js';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  adapterShapes,
  readAdapter,
  writeAdapterFiles,
} from '../../../lib/train/peft.js';
import type { LoraConfig } from '../../../lib/train/types.js';
import {
  budgetFromArgv,
  type FuzzBudget,
  FuzzFinding,
  type FuzzReport,
  fuzz,
  mutateBytes,
  mutateJson,
} from './mutate.js';

/** The model shape the seed adapter and every read are checked against. */
export const FUZZ_MODEL = {
  hiddenSize: 16,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 4,
  intermediateSize: 24,
  numLayers: 2,
} as const;

/** Writes the seed adapter and returns its two files' bytes. */
async function seedAdapter(dir: string): Promise<{ config: Buffer; weights: Buffer }> {
  const lora: LoraConfig = { rank: 2, alpha: 4, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: false, seed: 0 };
  const tensors = new Map<string, Float32Array>();
  for (const [name, shape] of adapterShapes(FUZZ_MODEL, lora))
    tensors.set(
      name,
      Float32Array.from({ length: shape[0] * shape[1] }, (_, i) => (i % 7) / 10),
    );
  await writeAdapterFiles(dir, lora, tensors, FUZZ_MODEL as unknown as ModelConfig);
  return {
    config: await readFile(path.join(dir, ADAPTER_CONFIG)),
    weights: await readFile(path.join(dir, ADAPTER_WEIGHTS)),
  };
}

/** Splits a safetensors file into its header JSON and the rest (length prefix rebuilt on join). */
function splitSafetensors(b: Buffer): { header: unknown; data: Buffer } {
  const n = Number(b.readBigUInt64LE(0));
  return { header: JSON.parse(b.subarray(8, 8 + n).toString('utf8')), data: b.subarray(8 + n) };
}
function joinSafetensors(header: unknown, data: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

/** Runs the fuzzer for `budget`; returns its report. */
export async function fuzzPeft(budget: FuzzBudget): Promise<FuzzReport> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-fuzz-peft-'));
  try {
    const dir = tmp; // the adapter folder: the seed is written here, then each input over it
    const seed = await seedAdapter(dir);
    const seedConfig = JSON.parse(seed.config.toString('utf8')) as unknown;
    const seedWeights = splitSafetensors(seed.weights);
    return await fuzz('fuzz-peft', budget, async (rng) => {
      let config: Uint8Array = seed.config;
      let weights: Uint8Array = seed.weights;
      const what = rng.below(6);
      if (what <= 1) config = Buffer.from(JSON.stringify(mutateJson(rng, seedConfig)));
      else if (what === 2) config = mutateBytes(rng, seed.config);
      else if (what === 3) weights = joinSafetensors(mutateJson(rng, seedWeights.header), seedWeights.data);
      else if (what === 4) weights = mutateBytes(rng, seed.weights.subarray(0, 8 + 600));
      else {
        config = Buffer.from(JSON.stringify(mutateJson(rng, seedConfig)));
        weights = joinSafetensors(mutateJson(rng, seedWeights.header), seedWeights.data);
      }
      if (what === 4) weights = Buffer.concat([weights, seed.weights.subarray(8 + 600)]);
      const input = {
        config: Buffer.from(config).toString('latin1'),
        weightsHead: Buffer.from(weights.subarray(0, 2048)).toString('latin1'),
      };
      await writeFile(path.join(dir, ADAPTER_CONFIG), config);
      await writeFile(path.join(dir, ADAPTER_WEIGHTS), weights);
      try {
        const r = await readAdapter(dir, FUZZ_MODEL);
        // An accepted adapter must be self-consistent: every tensor of the config's layout, right sized.
        const shapes = adapterShapes(FUZZ_MODEL, r.lora);
        if (shapes.size !== r.tensors.size)
          throw new FuzzFinding(`accepted with ${r.tensors.size} tensors, layout has ${shapes.size}`);
        for (const [name, shape] of shapes) {
          const t = r.tensors.get(name);
          if (!t || t.length !== shape[0] * shape[1])
            throw new FuzzFinding(
              `accepted, but tensor ${name} is ${t?.length} values, expected ${shape[0] * shape[1]}`,
            );
          for (const x of t) if (!Number.isFinite(x)) throw new FuzzFinding(`accepted a non-finite value in ${name}`);
        }
        if (!(r.lora.rank >= 1 && Number.isInteger(r.lora.rank) && Number.isFinite(r.lora.alpha)))
          throw new FuzzFinding(`accepted rank ${r.lora.rank} alpha ${r.lora.alpha}`);
        return { input, accepted: true };
      } catch (error) {
        return { input, accepted: false, error };
      }
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = await fuzzPeft(budgetFromArgv(process.argv, 'fuzz-peft'));
  process.exitCode = report.findings > 0 ? 1 : 0;
}
