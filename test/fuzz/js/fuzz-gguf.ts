/**
 * fuzz-gguf.ts — round-trip fuzzer of the GGUF writer (lib/formats/gguf.ts): random metadata (every
 * value type, arrays, edge values, and invalid ones: out-of-range integers, wrong JS types, odd type
 * names, duplicate or empty keys, bad alignments) and random tensors (names, 1–4 dims, F32/F16/BF16,
 * random bytes) are written with GgufFileWriter and read back with the independent reader in
 * test/helpers/gguf-reader.ts. The writer must either refuse with a MotifError, or write a file the
 * reader parses into exactly what was written (keys in order, types, values, dims, data bytes, and
 * aligned offsets). Anything else is a finding.
 *
 *   node --import tsx test/fuzz/js/fuzz-gguf.ts [--seconds 30] [--runs N] [--seed N] [--findings DIR]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  GGML_TYPE,
  GGML_TYPE_BYTES,
  GGUF_VALUE_TYPE,
  GgufFileWriter,
  type GgufTensorDescriptor,
  type GgufValue,
} from '../../../lib/formats/gguf.js';
import { type GgufReadValue, readGguf } from '../../helpers/gguf-reader.js';
import { budgetFromArgv, type FuzzBudget, FuzzFinding, type FuzzReport, fuzz, type Rng } from './mutate.js';

const SCALAR_TYPES = [
  'uint8',
  'int8',
  'uint16',
  'int16',
  'uint32',
  'int32',
  'float32',
  'bool',
  'string',
  'uint64',
  'int64',
  'float64',
] as const;
type Scalar = (typeof SCALAR_TYPES)[number];
const RANGES: Partial<Record<Scalar, [number, number]>> = {
  uint8: [0, 255],
  int8: [-128, 127],
  uint16: [0, 65535],
  int16: [-32768, 32767],
  uint32: [0, 4294967295],
  int32: [-2147483648, 2147483647],
};
/** Type names that are not GGUF types but are properties of every object. */
const ODD_TYPES = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'array', 'float16', ''];

function scalarValue(rng: Rng, type: Scalar, valid: boolean): unknown {
  if (!valid)
    return rng.pick<unknown>([
      Number.NaN,
      Number.POSITIVE_INFINITY,
      -1,
      0.5,
      2 ** 64,
      -(2 ** 63) - 4096,
      '12',
      null,
      undefined,
      {},
      [],
      true,
      10n ** 30n,
      -1n,
    ]);
  switch (type) {
    case 'bool':
      return rng.chance(0.5);
    case 'string': {
      const chars = ['a', 'é', '漢', '😀', '\u0000', '"', '\n', 'z'];
      return Array.from({ length: rng.below(12) }, () => rng.pick(chars)).join('');
    }
    case 'float32':
    case 'float64':
      return rng.pick([0, -0, 1.5, -3.25, 1e-40, 3.4e38, 1e300, Number.NaN, Number.POSITIVE_INFINITY, rng.u32() / 7]);
    case 'uint64':
      return rng.chance(0.5) ? BigInt(rng.u32()) * BigInt(rng.u32()) : rng.pick([0, 1, 2 ** 53 - 1]);
    case 'int64':
      return rng.chance(0.5) ? -BigInt(rng.u32()) * BigInt(rng.u32()) : rng.pick([0, -1, -(2 ** 53) + 1]);
    default: {
      if (!Object.hasOwn(RANGES, type)) return rng.below(3); // an odd item type: any small number
      const [lo, hi] = RANGES[type] as [number, number];
      return rng.chance(0.3) ? rng.pick([lo, hi]) : lo + rng.below(Math.min(hi - lo + 1, 2 ** 31));
    }
  }
}

function randomValue(rng: Rng): GgufValue {
  const valid = !rng.chance(0.08);
  if (rng.chance(0.03)) return { type: rng.pick(ODD_TYPES), value: 1 } as unknown as GgufValue;
  if (rng.chance(0.2)) {
    const itemType = rng.chance(0.05) ? rng.pick(ODD_TYPES) : rng.pick(SCALAR_TYPES);
    const items = Array.from({ length: rng.below(6) }, () =>
      scalarValue(rng, itemType as Scalar, valid || !rng.chance(0.3)),
    );
    return { type: 'array', itemType, value: items } as unknown as GgufValue;
  }
  const type = rng.pick(SCALAR_TYPES);
  return { type, value: scalarValue(rng, type, valid) } as unknown as GgufValue;
}

function randomKey(rng: Rng, used: string[]): string {
  if (used.length && rng.chance(0.03)) return rng.pick(used);
  if (rng.chance(0.02)) return '';
  if (rng.chance(0.05)) return 'general.alignment';
  return (
    rng.pick(['general.', 'qwen2.', 'tokenizer.ggml.', 'x.', 'é.']) +
    rng.pick(['name', 'a', 'b', 'c', '漢']) +
    rng.below(50)
  );
}

function randomTensors(rng: Rng): GgufTensorDescriptor[] {
  const out: GgufTensorDescriptor[] = [];
  for (let i = rng.below(5); i > 0; i--) {
    const rank = rng.chance(0.05) ? rng.pick([0, 5]) : 1 + rng.below(4);
    const shape = Array.from({ length: rank }, () =>
      rng.chance(0.03) ? rng.pick([0, -1, 1.5, Number.NaN]) : 1 + rng.below(5),
    );
    const type = rng.chance(0.04) ? rng.pick(ODD_TYPES) : rng.pick(['F32', 'F16', 'BF16']);
    const name = rng.chance(0.03)
      ? rng.pick(['', 'x'.repeat(65), 'é'.repeat(33)])
      : `blk.${rng.below(4)}.${rng.pick(['attn_q', 'ffn_up', 'token_embd', '漢'])}.weight`;
    out.push({ name, shape, type } as GgufTensorDescriptor);
  }
  return out;
}

const toBig = (v: unknown) => (typeof v === 'bigint' ? v : BigInt(v as number));

/** Does `read` (what the reader parsed) equal `written` of scalar type `type`? */
function sameScalar(type: string, written: unknown, read: GgufReadValue): boolean {
  if (type === 'uint64' || type === 'int64') return toBig(written) === toBig(read);
  if (type === 'float32')
    return Object.is(Math.fround(written as number), read) || (Number.isNaN(written) && Number.isNaN(read));
  if (type === 'float64') return Object.is(written, read) || (Number.isNaN(written) && Number.isNaN(read));
  return written === read;
}

/** Runs the fuzzer for `budget`; returns its report. */
export async function fuzzGguf(budget: FuzzBudget): Promise<FuzzReport> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-fuzz-gguf-'));
  const file = path.join(tmp, 'f.gguf');
  try {
    return await fuzz('fuzz-gguf', budget, async (rng) => {
      const metadata: Array<[string, GgufValue]> = [];
      for (let i = rng.below(8); i > 0; i--) {
        const key = randomKey(
          rng,
          metadata.map(([k]) => k),
        );
        let v = randomValue(rng);
        if (key === 'general.alignment' && rng.chance(0.7))
          v = { type: 'uint32', value: rng.pick([8, 16, 32, 64, 24, 0, 12, 4096]) };
        metadata.push([key, v]);
      }
      const tensors = randomTensors(rng);
      const input = { metadata, tensors };
      let writer: GgufFileWriter | undefined;
      try {
        writer = await GgufFileWriter.create(file, metadata, tensors);
        const data: Buffer[] = [];
        for (const t of tensors) {
          const n = t.shape.reduce((a, b) => a * b, 1) * GGML_TYPE_BYTES[t.type];
          const bytes = Buffer.alloc(n);
          for (let i = 0; i < n; i++) bytes[i] = rng.below(256);
          data.push(bytes);
          // any chunking: split in up to 3 pieces
          const cut = rng.below(n + 1);
          await writer.write(bytes.subarray(0, cut));
          await writer.write(bytes.subarray(cut));
        }
        await writer.commit();
        writer = undefined;
        let read: ReturnType<typeof readGguf>;
        try {
          read = readGguf(file);
        } catch (e) {
          throw new FuzzFinding(
            `the writer accepted this input but the reader refuses the file: ${(e as Error).message}`,
          );
        }
        const keys = [...read.metadata.keys()];
        if (JSON.stringify(keys) !== JSON.stringify(metadata.map(([k]) => k)))
          throw new FuzzFinding(
            `keys ${JSON.stringify(keys)} read back, ${JSON.stringify(metadata.map(([k]) => k))} written`,
          );
        for (const [key, v] of metadata) {
          const got = read.metadata.get(key) as { type: number; value: GgufReadValue };
          if (v.type === 'array') {
            const items = got.value as GgufReadValue[];
            if (got.type !== 900 + GGUF_VALUE_TYPE[v.itemType] || items.length !== v.value.length)
              throw new FuzzFinding(`${key}: array read back as type ${got.type} with ${items.length} items`);
            v.value.forEach((x, i) => {
              if (!sameScalar(v.itemType, x, items[i] as GgufReadValue))
                throw new FuzzFinding(`${key}[${i}]: ${String(x)} written, ${String(items[i])} read`);
            });
          } else if (got.type !== GGUF_VALUE_TYPE[v.type] || !sameScalar(v.type, v.value, got.value))
            throw new FuzzFinding(
              `${key}: ${v.type} ${String(v.value)} written, type ${got.type} ${String(got.value)} read`,
            );
        }
        if (read.tensors.length !== tensors.length) throw new FuzzFinding(`${read.tensors.length} tensors read back`);
        tensors.forEach((t, i) => {
          const r = read.tensors[i];
          if (
            r.name !== t.name ||
            r.type !== GGML_TYPE[t.type] ||
            JSON.stringify(r.dims) !== JSON.stringify([...t.shape].reverse())
          )
            throw new FuzzFinding(`tensor ${i}: ${JSON.stringify(r)} read back for ${JSON.stringify(t)}`);
          if (!read.bytes.subarray(r.offset, r.offset + data[i].length).equals(data[i]))
            throw new FuzzFinding(`tensor ${t.name}: data bytes differ`);
        });
        return { input, accepted: true };
      } catch (error) {
        await writer?.abort();
        return { input, accepted: false, error };
      }
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = await fuzzGguf(budgetFromArgv(process.argv, 'fuzz-gguf'));
  process.exitCode = report.findings > 0 ? 1 : 0;
}
