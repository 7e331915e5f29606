/**
 * test/helpers/gguf-reader.ts — a small, independent GGUF v2/v3 reader for tests: parses the header,
 * metadata and tensor infos of a file written by lib/formats/gguf.ts and checks the layout rules
 * (magic, version, alignment of every tensor's offset, data inside the file). Written from the GGUF
 * spec (ggml docs/gguf.md), not from the writer, so a writer bug does not cancel out.
 */
import { readFileSync } from 'node:fs';

export type GgufReadValue = number | bigint | boolean | string | GgufReadValue[];

export interface GgufReadTensor {
  name: string;
  /** ggml order: dims[0] varies fastest. */
  dims: number[];
  type: number;
  /** Absolute offset of the data in the file. */
  offset: number;
}

export interface GgufReadFile {
  version: number;
  metadata: Map<string, { type: number; value: GgufReadValue }>;
  tensors: GgufReadTensor[];
  alignment: number;
  dataStart: number;
  bytes: Buffer;
}

/** Reads and checks a GGUF file; throws an Error saying what is wrong. */
export function readGguf(file: string): GgufReadFile {
  const b = readFileSync(file);
  let at = 0;
  const need = (n: number) => {
    if (at + n > b.length) throw new Error(`${file}: truncated at byte ${at} (need ${n} more)`);
  };
  const u32 = () => {
    need(4);
    const v = b.readUInt32LE(at);
    at += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = b.readBigUInt64LE(at);
    at += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${file}: u64 ${v} too large at ${at - 8}`);
    return Number(v);
  };
  const str = () => {
    const n = u64();
    need(n);
    const s = b.toString('utf8', at, at + n);
    at += n;
    return s;
  };
  /** Reads `size` bytes at the cursor with `get` and advances. */
  const fixed = <T>(size: number, get: (offset: number) => T): T => {
    need(size);
    const v = get(at);
    at += size;
    return v;
  };
  const SCALARS: Record<number, () => GgufReadValue> = {
    0: () => fixed(1, (o) => b.readUInt8(o)),
    1: () => fixed(1, (o) => b.readInt8(o)),
    2: () => fixed(2, (o) => b.readUInt16LE(o)),
    3: () => fixed(2, (o) => b.readInt16LE(o)),
    4: () => u32(),
    5: () => fixed(4, (o) => b.readInt32LE(o)),
    6: () => fixed(4, (o) => b.readFloatLE(o)),
    7: () => {
      const v = fixed(1, (o) => b.readUInt8(o));
      if (v > 1) throw new Error(`${file}: bool value ${v} at ${at - 1}`);
      return v === 1;
    },
    8: () => str(),
    10: () => fixed(8, (o) => b.readBigUInt64LE(o)),
    11: () => fixed(8, (o) => b.readBigInt64LE(o)),
    12: () => fixed(8, (o) => b.readDoubleLE(o)),
  };
  const scalar = (type: number): GgufReadValue => {
    const f = SCALARS[type];
    if (!f) throw new Error(`${file}: unknown value type ${type} at ${at}`);
    return f();
  };
  if (u32() !== 0x46554747) throw new Error(`${file}: bad magic`);
  const version = u32();
  if (version !== 2 && version !== 3) throw new Error(`${file}: version ${version}`);
  const nTensors = u64();
  const nKv = u64();
  const metadata = new Map<string, { type: number; value: GgufReadValue }>();
  for (let i = 0; i < nKv; i++) {
    const key = str();
    if (metadata.has(key)) throw new Error(`${file}: duplicate key ${key}`);
    const type = u32();
    if (type === 9) {
      const itemType = u32();
      const n = u64();
      const items: GgufReadValue[] = [];
      for (let j = 0; j < n; j++) items.push(scalar(itemType));
      metadata.set(key, { type: 9 * 100 + itemType, value: items });
    } else {
      metadata.set(key, { type, value: scalar(type) });
    }
  }
  const alignEntry = metadata.get('general.alignment');
  const alignment = alignEntry ? (alignEntry.value as number) : 32;
  const tensors: GgufReadTensor[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nd = u32();
    if (nd < 1 || nd > 4) throw new Error(`${file}: tensor ${name} has ${nd} dims`);
    const dims: number[] = [];
    for (let d = 0; d < nd; d++) dims.push(u64());
    const type = u32();
    const offset = u64();
    if (offset % alignment !== 0)
      throw new Error(`${file}: tensor ${name} offset ${offset} not aligned to ${alignment}`);
    tensors.push({ name, dims, type, offset });
  }
  const dataStart = Math.ceil(at / alignment) * alignment;
  for (const t of tensors) {
    const esize = t.type === 0 ? 4 : 2;
    t.offset += dataStart;
    const bytes = t.dims.reduce((a, c) => a * c, 1) * esize;
    if (t.offset + bytes > b.length) throw new Error(`${file}: tensor ${t.name} data runs past the end of the file`);
  }
  const sorted = [...tensors].sort((x, y) => x.offset - y.offset);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1];
    const pBytes = p.dims.reduce((a, c) => a * c, 1) * (p.type === 0 ? 4 : 2);
    if (p.offset + pBytes > sorted[i].offset)
      throw new Error(`${file}: tensors ${p.name} and ${sorted[i].name} overlap`);
  }
  return { version, metadata, tensors, alignment, dataStart, bytes: b };
}

/** The value of metadata `key`, or throws naming the missing key. */
export function ggufValue(f: GgufReadFile, key: string): GgufReadValue {
  const v = f.metadata.get(key);
  if (!v) throw new Error(`GGUF metadata has no '${key}'`);
  return v.value;
}

/** A tensor's data as f32 values (F32, F16 or BF16 in the file). */
export function ggufTensorF32(f: GgufReadFile, name: string): Float32Array {
  const t = f.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`GGUF has no tensor '${name}'`);
  const n = t.dims.reduce((a, c) => a * c, 1);
  const out = new Float32Array(n);
  const scratch = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < n; i++) {
    if (t.type === 0) out[i] = f.bytes.readFloatLE(t.offset + 4 * i);
    else if (t.type === 30) {
      scratch.setUint32(0, f.bytes.readUInt16LE(t.offset + 2 * i) << 16);
      out[i] = scratch.getFloat32(0);
    } else if (t.type === 1) {
      const h = f.bytes.readUInt16LE(t.offset + 2 * i);
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const s = h & 0x8000 ? -1 : 1;
      out[i] =
        e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? Number.NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
    } else throw new Error(`tensor ${name}: ggml type ${t.type} not handled`);
  }
  return out;
}
