/**
 * gguf.ts — a GGUF v3 writer (the file format of llama.cpp / ggml / ollama).
 *
 * Layout (all little-endian), per the GGUF spec in ggml's docs/gguf.md:
 *   magic "GGUF", version u32 = 3, tensor count u64, metadata KV count u64,
 *   KVs:          key (u64 length + UTF-8 bytes), value type u32, value,
 *   tensor infos: name, n_dims u32, dims u64[n_dims] (ggml order: fastest-varying first), ggml type u32,
 *                 offset u64 (relative to the data section, a multiple of the alignment),
 *   padding to the alignment (32 unless `general.alignment` says otherwise), then the tensor data,
 *   each tensor padded to the alignment.
 *
 * Shapes are given here in row-major order, outermost first (as in safetensors and numpy): an HF
 * linear weight [out, in] is written with dims [in, out]. The writer streams: the header is built
 * from the tensor list up front, then each tensor's bytes are appended in order, and the file is
 * written under a temporary name and renamed into place only when complete (commit), so a reader
 * never sees a partial file.
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { MotifError } from '../native/errors.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** ggml tensor types the writer emits, with their ids in ggml.h's `enum ggml_type`. */
export const GGML_TYPE = Object.freeze({ F32: 0, F16: 1, BF16: 30 } as const);
export type GgmlTypeName = keyof typeof GGML_TYPE;
/** Bytes per element of each emitted ggml type. */
export const GGML_TYPE_BYTES: Readonly<Record<GgmlTypeName, number>> = Object.freeze({ F32: 4, F16: 2, BF16: 2 });

/** GGUF metadata value types (`enum gguf_type`). */
export const GGUF_VALUE_TYPE = Object.freeze({
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const);

export type GgufScalarType = Exclude<keyof typeof GGUF_VALUE_TYPE, 'array'>;
type NumberType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';

/** One metadata value, typed the way it is stored. */
export type GgufValue =
  | { readonly type: NumberType; readonly value: number }
  | { readonly type: 'uint64' | 'int64'; readonly value: number | bigint }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'string'; readonly value: string }
  | {
      readonly type: 'array';
      readonly itemType: GgufScalarType;
      readonly value: readonly (number | bigint | boolean | string)[];
    };

/** Constructors for metadata values: `gguf.u32(24)`, `gguf.str('qwen2')`, `gguf.arr('string', tokens)`. */
export const gguf = Object.freeze({
  u8: (value: number): GgufValue => ({ type: 'uint8', value }),
  i8: (value: number): GgufValue => ({ type: 'int8', value }),
  u16: (value: number): GgufValue => ({ type: 'uint16', value }),
  i16: (value: number): GgufValue => ({ type: 'int16', value }),
  u32: (value: number): GgufValue => ({ type: 'uint32', value }),
  i32: (value: number): GgufValue => ({ type: 'int32', value }),
  f32: (value: number): GgufValue => ({ type: 'float32', value }),
  f64: (value: number): GgufValue => ({ type: 'float64', value }),
  u64: (value: number | bigint): GgufValue => ({ type: 'uint64', value }),
  i64: (value: number | bigint): GgufValue => ({ type: 'int64', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  str: (value: string): GgufValue => ({ type: 'string', value }),
  arr: (itemType: GgufScalarType, value: readonly (number | bigint | boolean | string)[]): GgufValue => ({
    type: 'array',
    itemType,
    value,
  }),
});

/** Metadata in file order: key -> value. */
export type GgufMetadata = ReadonlyMap<string, GgufValue> | ReadonlyArray<readonly [string, GgufValue]>;

/** A tensor to write: name, row-major shape (outermost first) and ggml type. */
export interface GgufTensorDescriptor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly type: GgmlTypeName;
}

/** Where everything goes: the header bytes and each tensor's absolute offset and size in the file. */
export interface GgufLayout {
  readonly header: Uint8Array;
  readonly alignment: number;
  /** Absolute file offset of each tensor's data, in input order. */
  readonly tensorOffsets: readonly number[];
  readonly tensorBytes: readonly number[];
  readonly fileBytes: number;
}

const RANGES: Record<NumberType, [number, number]> = {
  uint8: [0, 0xff],
  int8: [-0x80, 0x7f],
  uint16: [0, 0xffff],
  int16: [-0x8000, 0x7fff],
  uint32: [0, 0xffffffff],
  int32: [-0x80000000, 0x7fffffff],
  float32: [-Infinity, Infinity],
  float64: [-Infinity, Infinity],
};

function badValue(key: string, message: string): MotifError {
  return new MotifError('ERR_MOTIF_INVALID_ARGUMENT', `GGUF metadata '${key}': ${message}`);
}

/** A growable little-endian byte sink (Buffer methods: the fastest way to write many strings). */
class ByteWriter {
  private buf = Buffer.allocUnsafeSlow(1 << 16);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = Buffer.allocUnsafeSlow(cap);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number) {
    this.reserve(1);
    this.length = this.buf.writeUInt8(v, this.length);
  }
  i8(v: number) {
    this.reserve(1);
    this.length = this.buf.writeInt8(v, this.length);
  }
  u16(v: number) {
    this.reserve(2);
    this.length = this.buf.writeUInt16LE(v, this.length);
  }
  i16(v: number) {
    this.reserve(2);
    this.length = this.buf.writeInt16LE(v, this.length);
  }
  u32(v: number) {
    this.reserve(4);
    this.length = this.buf.writeUInt32LE(v, this.length);
  }
  i32(v: number) {
    this.reserve(4);
    this.length = this.buf.writeInt32LE(v, this.length);
  }
  f32(v: number) {
    this.reserve(4);
    this.length = this.buf.writeFloatLE(v, this.length);
  }
  f64(v: number) {
    this.reserve(8);
    this.length = this.buf.writeDoubleLE(v, this.length);
  }
  u64(v: number | bigint) {
    this.reserve(8);
    if (typeof v === 'number' && v <= 0xffffffff) {
      this.buf.writeUInt32LE(v, this.length);
      this.length = this.buf.writeUInt32LE(0, this.length + 4);
    } else this.length = this.buf.writeBigUInt64LE(BigInt(v), this.length);
  }
  i64(v: number | bigint) {
    this.reserve(8);
    this.length = this.buf.writeBigInt64LE(BigInt(v), this.length);
  }
  str(s: string) {
    // length prefix (u64) + UTF-8 bytes, written in place: reserve the worst case (3 bytes per UTF-16 unit)
    this.reserve(8 + s.length * 3);
    const n = this.buf.write(s, this.length + 8, 'utf8');
    this.buf.writeUInt32LE(n, this.length);
    this.buf.writeUInt32LE(0, this.length + 4);
    this.length += 8 + n;
  }
  zeros(n: number) {
    this.reserve(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  bytes(): Uint8Array {
    return new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.length);
  }
}

function checkScalar(key: string, type: GgufScalarType, v: unknown): void {
  if (type === 'string') {
    if (typeof v !== 'string') throw badValue(key, `expected a string, got ${typeof v}`);
    return;
  }
  if (type === 'bool') {
    if (typeof v !== 'boolean') throw badValue(key, `expected a boolean, got ${typeof v}`);
    return;
  }
  if (type === 'uint64' || type === 'int64') {
    const b = typeof v === 'bigint' ? v : typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : undefined;
    if (b === undefined) throw badValue(key, `expected an integer for ${type}, got ${String(v)}`);
    const ok = type === 'uint64' ? b >= 0n && b < 1n << 64n : b >= -(1n << 63n) && b < 1n << 63n;
    if (!ok) throw badValue(key, `${b} is out of range for ${type}`);
    return;
  }
  if (typeof v !== 'number') throw badValue(key, `expected a number for ${type}, got ${typeof v}`);
  if (type === 'float32' || type === 'float64') return;
  const [lo, hi] = RANGES[type];
  if (!Number.isInteger(v) || v < lo || v > hi) throw badValue(key, `${v} is not a ${type}`);
}

const SCALAR_WRITERS: Record<GgufScalarType, (w: ByteWriter, v: number | bigint | boolean | string) => void> = {
  uint8: (w, v) => w.u8(v as number),
  int8: (w, v) => w.i8(v as number),
  uint16: (w, v) => w.u16(v as number),
  int16: (w, v) => w.i16(v as number),
  uint32: (w, v) => w.u32(v as number),
  int32: (w, v) => w.i32(v as number),
  float32: (w, v) => w.f32(v as number),
  float64: (w, v) => w.f64(v as number),
  uint64: (w, v) => w.u64(v as number | bigint),
  int64: (w, v) => w.i64(v as number | bigint),
  bool: (w, v) => w.u8(v ? 1 : 0),
  string: (w, v) => w.str(v as string),
};

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/**
 * Builds the header of a GGUF v3 file holding `metadata` and `tensors` (in that order) and computes
 * where each tensor's data goes. The alignment is `general.alignment` when the metadata sets it.
 */
export function layoutGguf(metadata: GgufMetadata, tensors: readonly GgufTensorDescriptor[]): GgufLayout {
  const entries: Array<readonly [string, GgufValue]> =
    metadata instanceof Map
      ? [...(metadata as ReadonlyMap<string, GgufValue>).entries()]
      : [...(metadata as ReadonlyArray<readonly [string, GgufValue]>)];
  const keys = new Set<string>();
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  for (const [key, v] of entries) {
    if (typeof key !== 'string' || key.length === 0 || key.length > 65535)
      throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', `GGUF metadata key ${JSON.stringify(key)} is not a valid key`);
    if (keys.has(key)) throw badValue(key, 'the key appears twice');
    keys.add(key);
    if (v === null || typeof v !== 'object' || !Object.hasOwn(GGUF_VALUE_TYPE, v.type))
      throw badValue(key, 'value must be made with the gguf.* constructors');
    if (v.type === 'array') {
      if (v.itemType === ('array' as string) || !Object.hasOwn(GGUF_VALUE_TYPE, v.itemType))
        throw badValue(key, `array item type '${String(v.itemType)}' is not a scalar GGUF type`);
      if (!Array.isArray(v.value)) throw badValue(key, 'array value must be an array');
      for (const item of v.value) checkScalar(key, v.itemType, item);
    } else {
      checkScalar(key, v.type, v.value);
    }
    if (key === 'general.alignment') {
      // ggml's reader refuses an alignment that is not a power of two; past 1 MiB it only bloats the file.
      if (v.type !== 'uint32' || v.value < 8 || v.value > 1 << 20 || (v.value & (v.value - 1)) !== 0)
        throw badValue(key, 'must be a uint32 power of two from 8 to 1048576 (ggml refuses other alignments)');
      alignment = v.value;
    }
  }
  const names = new Set<string>();
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name.length === 0 || Buffer.byteLength(t.name) > 64)
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `GGUF tensor name ${JSON.stringify(t.name)} must be 1 to 64 bytes (GGML_MAX_NAME)`,
      );
    if (names.has(t.name)) throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', `GGUF tensor '${t.name}' appears twice`);
    names.add(t.name);
    if (!Object.hasOwn(GGML_TYPE, t.type))
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `GGUF tensor '${t.name}': unknown ggml type ${String(t.type)}`,
      );
    if (t.shape.length < 1 || t.shape.length > 4 || !t.shape.every((d) => Number.isSafeInteger(d) && d > 0))
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `GGUF tensor '${t.name}': shape [${t.shape.join(', ')}] must have 1 to 4 positive dimensions`,
      );
  }

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(entries.length);
  for (const [key, v] of entries) {
    w.str(key);
    w.u32(GGUF_VALUE_TYPE[v.type]);
    if (v.type === 'array') {
      w.u32(GGUF_VALUE_TYPE[v.itemType]);
      w.u64(v.value.length);
      const write = SCALAR_WRITERS[v.itemType];
      for (const item of v.value) write(w, item);
    } else {
      SCALAR_WRITERS[v.type](w, v.value);
    }
  }
  const relOffsets: number[] = [];
  const tensorBytes: number[] = [];
  let rel = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * GGML_TYPE_BYTES[t.type];
    w.str(t.name);
    w.u32(t.shape.length);
    for (let i = t.shape.length - 1; i >= 0; i--) w.u64(t.shape[i]);
    w.u32(GGML_TYPE[t.type]);
    w.u64(rel);
    relOffsets.push(rel);
    tensorBytes.push(bytes);
    rel = alignUp(rel + bytes, alignment);
  }
  w.zeros(alignUp(w.length, alignment) - w.length);
  const header = w.bytes();
  const dataStart = header.length;
  return {
    header,
    alignment,
    tensorOffsets: relOffsets.map((o) => dataStart + o),
    tensorBytes,
    fileBytes: dataStart + rel,
  };
}

/**
 * Writes a GGUF file by streaming: create() writes the header to a temporary file beside `outFile`;
 * write() appends tensor data in the order of the tensor list (any chunking); commit() checks that
 * every tensor is complete, closes and renames the file into place; abort() removes the temporary file.
 */
export class GgufFileWriter {
  readonly outFile: string;
  readonly tempFile: string;
  readonly layout: GgufLayout;
  private readonly tensors: readonly GgufTensorDescriptor[];
  private fh: FileHandle | undefined;
  private index = 0;
  private written = 0;

  private constructor(
    outFile: string,
    tempFile: string,
    fh: FileHandle,
    layout: GgufLayout,
    tensors: readonly GgufTensorDescriptor[],
  ) {
    this.outFile = outFile;
    this.tempFile = tempFile;
    this.fh = fh;
    this.layout = layout;
    this.tensors = tensors;
  }

  /** Lays out the file, creates the temporary file and writes the header (ERR_MOTIF_IO when it cannot). */
  static async create(
    outFile: string,
    metadata: GgufMetadata,
    tensors: readonly GgufTensorDescriptor[],
  ): Promise<GgufFileWriter> {
    const layout = layoutGguf(metadata, tensors);
    const abs = path.resolve(outFile);
    const temp = path.join(
      path.dirname(abs),
      `.${path.basename(abs)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`,
    );
    let fh: FileHandle;
    try {
      fh = await open(temp, 'wx');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why =
        e.code === 'ENOENT'
          ? `the folder ${path.dirname(abs)} does not exist`
          : e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS'
            ? `the folder ${path.dirname(abs)} is not writable`
            : e.code === 'ENOTDIR'
              ? `${path.dirname(abs)} is not a folder`
              : e.message;
      throw new MotifError('ERR_MOTIF_IO', `cannot write ${abs}: ${why}`, { cause: err });
    }
    const w = new GgufFileWriter(abs, temp, fh, layout, tensors);
    try {
      await w.writeAt(layout.header, 0);
    } catch (err) {
      await w.abort();
      throw err;
    }
    return w;
  }

  /** The tensor whose data the next write() continues, or undefined when all are complete. */
  get currentTensor(): GgufTensorDescriptor | undefined {
    return this.tensors[this.index];
  }

  /** Appends `chunk` to the current tensor's data; a chunk may not run past the end of that tensor. */
  async write(chunk: Uint8Array): Promise<void> {
    const t = this.tensors[this.index];
    if (!t) throw new MotifError('ERR_MOTIF_INTERNAL', `GGUF writer: data written past the last tensor`);
    const need = this.layout.tensorBytes[this.index];
    if (this.written + chunk.byteLength > need)
      throw new MotifError(
        'ERR_MOTIF_INTERNAL',
        `GGUF writer: tensor '${t.name}' given ${this.written + chunk.byteLength} bytes, expected ${need}`,
      );
    await this.writeAt(chunk, this.layout.tensorOffsets[this.index] + this.written);
    this.written += chunk.byteLength;
    if (this.written === need) {
      this.index++;
      this.written = 0;
    }
  }

  /** Finishes the file: pads it to its full length, closes it and renames it to outFile. */
  async commit(): Promise<void> {
    if (this.index !== this.tensors.length) {
      const t = this.tensors[this.index];
      throw new MotifError('ERR_MOTIF_INTERNAL', `GGUF writer: tensor '${t.name}' is incomplete at commit`);
    }
    const fh = this.handle();
    try {
      await fh.truncate(this.layout.fileBytes);
      await fh.sync();
      await fh.close();
      this.fh = undefined;
      await rename(this.tempFile, this.outFile);
    } catch (err) {
      await this.abort();
      throw new MotifError('ERR_MOTIF_IO', `cannot write ${this.outFile}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Closes and deletes the temporary file (safe to call more than once). */
  async abort(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close().catch(() => {});
    await rm(this.tempFile, { force: true }).catch(() => {});
  }

  private handle(): FileHandle {
    if (!this.fh) throw new MotifError('ERR_MOTIF_DISPOSED', `GGUF writer for ${this.outFile} is closed`);
    return this.fh;
  }

  private async writeAt(bytes: Uint8Array, position: number): Promise<void> {
    const fh = this.handle();
    let done = 0;
    try {
      while (done < bytes.byteLength) {
        const { bytesWritten } = await fh.write(bytes, done, bytes.byteLength - done, position + done);
        done += bytesWritten;
      }
    } catch (err) {
      throw new MotifError('ERR_MOTIF_IO', `cannot write ${this.outFile}: ${(err as Error).message}`, { cause: err });
    }
  }
}
