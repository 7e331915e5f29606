/**
 * safetensors-write.ts — writes .safetensors files: from Float32Array tensors stored as F32, F16 or
 * BF16 ({@link writeSafetensors}), or streamed tensor by tensor from a producer of raw bytes in any
 * safetensors dtype ({@link writeSafetensorsStreamed}: a whole model without holding it in memory).
 *
 * The layout is what the reference implementation (huggingface/safetensors) writes and validates:
 * 8-byte little-endian header length, a JSON header whose keys are sorted (`__metadata__` first) and
 * padded with spaces so the data section starts on an 8-byte boundary, then the tensors' bytes back
 * to back with no gaps (wider dtypes first, then by name, so every tensor is aligned to its element
 * size). Narrowing to F16/BF16 rounds to nearest even (lib/formats/dtypes.ts).
 *
 * Files are written atomically: to a temporary name beside the target, flushed, then renamed over
 * it, so a reader (or a crash) never sees half a file. Errors are MotifErrors naming the file and
 * tensor.
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MotifError } from '../native/errors.js';
import { convertFloats, type FloatDtype } from './dtypes.js';
import { SAFETENSORS_DTYPE_BYTES, type SafetensorsDtype } from './safetensors.js';

/** The dtypes the writer stores. */
export type WriteDtype = 'F32' | 'F16' | 'BF16';

/** One tensor to write: f32 values, row-major shape, and (optionally) the dtype to store it as. */
export interface TensorToWrite {
  data: Float32Array;
  shape: readonly number[];
  /** Default: the call's `dtype` option (F32 when none). */
  dtype?: WriteDtype;
}

/** Options of {@link writeSafetensors} and {@link encodeSafetensors}. */
export interface WriteSafetensorsOptions {
  /** Dtype of tensors that do not name one. Default F32. */
  dtype?: WriteDtype;
  /** String key/values stored under `__metadata__` (PEFT writes `{ format: 'pt' }`). */
  metadata?: Record<string, string>;
}

const BYTES: Readonly<Record<WriteDtype, number>> = { F32: 4, F16: 2, BF16: 2 };
const TO_FLOAT: Readonly<Record<WriteDtype, FloatDtype>> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

/** A tensor's place in the file: name, stored dtype, shape and byte range within the data section. */
interface Slot {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

interface Planned extends Slot {
  dtype: WriteDtype;
  data: Float32Array;
}

function invalid(message: string): MotifError {
  return new MotifError('ERR_MOTIF_INVALID_ARGUMENT', message);
}

function checkName(name: unknown, where: string): void {
  if (typeof name !== 'string' || name.length === 0 || name === '__metadata__')
    throw invalid(`${where}: '${String(name)}' is not a valid tensor name`);
}

function checkShape(name: string, shape: unknown, where: string): number[] {
  const dims: readonly unknown[] = Array.isArray(shape) ? shape : [-1];
  if (dims.some((d) => !Number.isSafeInteger(d) || (d as number) < 0))
    throw invalid(`${where}: tensor '${name}' has shape ${JSON.stringify(shape)}, not a list of integers >= 0`);
  return [...(dims as number[])];
}

/**
 * Lays tensors out: data order (wider elements first, then by name — the reference writer's order,
 * so no padding is needed), byte ranges, and the padded header bytes. Sets each slot's begin/end.
 */
function layout<T extends Slot>(
  slots: T[],
  metadata: Record<string, string> | undefined,
  where: string,
): { header: Uint8Array; ordered: T[]; dataBytes: number } {
  if (os.endianness() !== 'LE')
    throw new MotifError('ERR_MOTIF_UNSUPPORTED', 'writing safetensors needs a little-endian machine');
  const width = (t: Slot) => SAFETENSORS_DTYPE_BYTES[t.dtype];
  const ordered = [...slots].sort((a, b) => width(b) - width(a) || (a.name < b.name ? -1 : 1));
  let offset = 0;
  for (const t of ordered) {
    t.begin = offset;
    offset += t.shape.reduce((a, b) => a * b, 1) * width(t);
    t.end = offset;
  }
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== 'string') throw invalid(`${where}: metadata '${k}' must be a string`);
    header.__metadata__ = Object.fromEntries(Object.entries(metadata).sort(([a], [b]) => (a < b ? -1 : 1)));
  }
  for (const t of [...slots].sort((a, b) => (a.name < b.name ? -1 : 1)))
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [t.begin, t.end] };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + padded).fill(0x20);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, 8);
  return { header: bytes, ordered, dataBytes: offset };
}

/** Validates Float32Array tensors and lays them out (see {@link layout}). */
function plan(
  tensors: ReadonlyMap<string, TensorToWrite> | Readonly<Record<string, TensorToWrite>>,
  options: WriteSafetensorsOptions,
  where: string,
): { header: Uint8Array; planned: Planned[]; dataBytes: number } {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const defaultDtype = options.dtype ?? 'F32';
  if (!Object.hasOwn(BYTES, defaultDtype))
    throw invalid(`${where}: dtype '${String(defaultDtype)}' is not one of F32, F16, BF16`);
  const list: Planned[] = [];
  for (const [name, t] of entries) {
    checkName(name, where);
    if (!t || !(t.data instanceof Float32Array))
      throw invalid(`${where}: tensor '${name}' needs its data as a Float32Array`);
    const dtype = t.dtype ?? defaultDtype;
    if (!Object.hasOwn(BYTES, dtype))
      throw invalid(`${where}: tensor '${name}' has dtype '${String(dtype)}' (expected F32, F16 or BF16)`);
    const shape = checkShape(name, t.shape, where);
    const numel = shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length)
      throw invalid(
        `${where}: tensor '${name}' has shape [${t.shape.join(', ')}] (${numel} values) but ${t.data.length} values`,
      );
    list.push({ name, dtype, shape, data: t.data, begin: 0, end: 0 });
  }
  const { header, ordered, dataBytes } = layout(list, options.metadata, where);
  return { header, planned: ordered, dataBytes };
}

/** The stored bytes of f32 values `data` in `dtype` (F32: a view of them; F16/BF16: rounded to nearest even). */
export function encodeFloats(data: Float32Array, dtype: WriteDtype): Uint8Array {
  const src = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (dtype === 'F32') return src;
  const out = new Uint8Array(data.length * BYTES[dtype]);
  convertFloats(src, 'f32', out, TO_FLOAT[dtype], data.length);
  return out;
}

/** The stored bytes of one planned tensor. */
const tensorBytes = (p: Planned): Uint8Array => encodeFloats(p.data, p.dtype);

/** The bytes of a safetensors file holding `tensors` (for tests and small files; see {@link writeSafetensors}). */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, TensorToWrite> | Readonly<Record<string, TensorToWrite>>,
  options: WriteSafetensorsOptions = {},
): Uint8Array {
  const { header, planned, dataBytes } = plan(tensors, options, 'encodeSafetensors');
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header, 0);
  for (const p of planned) out.set(tensorBytes(p), header.length + p.begin);
  return out;
}

/** A temporary path beside `target` (same folder, so the final rename stays on one filesystem). */
export function tempPathFor(target: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
}

async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

/** One tensor of {@link writeSafetensorsStreamed}: stored dtype, shape and the producer of its bytes. */
export interface StreamedTensor {
  dtype: SafetensorsDtype;
  shape: readonly number[];
  /**
   * Writes the tensor's raw little-endian bytes through `write`, in order, in as many pieces as it
   * likes; called once per tensor, in data order. Exactly numel × element-size bytes must pass.
   */
  fill: (write: (bytes: Uint8Array) => Promise<void>) => Promise<void>;
}

/**
 * Writes a safetensors file whose tensors are produced one at a time (a model's worth of weights
 * never sits in memory), atomically: temporary file + fsync + rename. A producer that writes too
 * few or too many bytes is an internal error and no file is left behind.
 */
export async function writeSafetensorsStreamed(
  file: string,
  tensors: ReadonlyMap<string, StreamedTensor>,
  options: Pick<WriteSafetensorsOptions, 'metadata'> = {},
): Promise<void> {
  const slots: (Slot & { fill: StreamedTensor['fill'] })[] = [];
  for (const [name, t] of tensors) {
    checkName(name, file);
    if (!Object.hasOwn(SAFETENSORS_DTYPE_BYTES, t.dtype))
      throw invalid(`${file}: tensor '${name}' has dtype '${String(t.dtype)}', not a safetensors dtype`);
    slots.push({ name, dtype: t.dtype, shape: checkShape(name, t.shape, file), fill: t.fill, begin: 0, end: 0 });
  }
  const { header, ordered } = layout(slots, options.metadata, file);
  const tmp = tempPathFor(file);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'wx');
    const out = fh;
    await writeAll(out, header);
    for (const t of ordered) {
      let written = 0;
      const want = t.end - t.begin;
      await t.fill(async (bytes) => {
        written += bytes.length;
        if (written > want)
          throw new MotifError('ERR_MOTIF_INTERNAL', `${file}: tensor '${t.name}' produced more than ${want} bytes`);
        await writeAll(out, bytes);
      });
      if (written !== want)
        throw new MotifError('ERR_MOTIF_INTERNAL', `${file}: tensor '${t.name}' produced ${written} of ${want} bytes`);
    }
    await out.sync();
    await out.close();
    fh = undefined;
    await rename(tmp, file);
  } catch (err) {
    await fh?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    if (err instanceof MotifError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new MotifError('ERR_MOTIF_IO', `${file}: cannot write the safetensors file (${e?.code ?? e?.message})`, {
      cause: err,
    });
  }
}

/**
 * Writes `tensors` to `file` as safetensors, atomically (temporary file + fsync + rename). The
 * tensors are converted one at a time, so memory holds one narrowed tensor at most.
 */
export async function writeSafetensors(
  file: string,
  tensors: ReadonlyMap<string, TensorToWrite> | Readonly<Record<string, TensorToWrite>>,
  options: WriteSafetensorsOptions = {},
): Promise<void> {
  const { planned } = plan(tensors, options, file);
  const streamed = new Map<string, StreamedTensor>();
  for (const p of planned)
    streamed.set(p.name, { dtype: p.dtype, shape: p.shape, fill: (write) => write(tensorBytes(p)) });
  await writeSafetensorsStreamed(file, streamed, { metadata: options.metadata });
}
