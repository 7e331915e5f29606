/**
 * safetensors-write.ts — writes .safetensors files from Float32Array tensors, stored as F32, F16 or BF16.
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

interface Planned {
  name: string;
  dtype: WriteDtype;
  shape: number[];
  data: Float32Array;
  begin: number;
  end: number;
}

function invalid(message: string): MotifError {
  return new MotifError('ERR_MOTIF_INVALID_ARGUMENT', message);
}

/** Validates the tensors and lays them out: data order, offsets and the padded header bytes. */
function plan(
  tensors: ReadonlyMap<string, TensorToWrite> | Readonly<Record<string, TensorToWrite>>,
  options: WriteSafetensorsOptions,
  where: string,
): { header: Uint8Array; planned: Planned[]; dataBytes: number } {
  if (os.endianness() !== 'LE')
    throw new MotifError('ERR_MOTIF_UNSUPPORTED', 'writing safetensors needs a little-endian machine');
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const defaultDtype = options.dtype ?? 'F32';
  if (!Object.hasOwn(BYTES, defaultDtype))
    throw invalid(`${where}: dtype '${String(defaultDtype)}' is not one of F32, F16, BF16`);
  const list: Planned[] = [];
  for (const [name, t] of entries) {
    if (typeof name !== 'string' || name.length === 0 || name === '__metadata__')
      throw invalid(`${where}: '${String(name)}' is not a valid tensor name`);
    if (!t || !(t.data instanceof Float32Array))
      throw invalid(`${where}: tensor '${name}' needs its data as a Float32Array`);
    const dtype = t.dtype ?? defaultDtype;
    if (!Object.hasOwn(BYTES, dtype))
      throw invalid(`${where}: tensor '${name}' has dtype '${String(dtype)}' (expected F32, F16 or BF16)`);
    const shape: readonly number[] = Array.isArray(t.shape as unknown) ? t.shape : [-1];
    if (shape.some((d) => !Number.isSafeInteger(d) || d < 0))
      throw invalid(`${where}: tensor '${name}' has shape ${JSON.stringify(t.shape)}, not a list of integers >= 0`);
    const numel = shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length)
      throw invalid(
        `${where}: tensor '${name}' has shape [${t.shape.join(', ')}] (${numel} values) but ${t.data.length} values`,
      );
    list.push({ name, dtype, shape: [...t.shape], data: t.data, begin: 0, end: 0 });
  }
  // Data order: wider elements first, then by name (the reference writer's order): no padding needed.
  const byData = [...list].sort((a, b) => BYTES[b.dtype] - BYTES[a.dtype] || (a.name < b.name ? -1 : 1));
  let offset = 0;
  for (const p of byData) {
    p.begin = offset;
    offset += p.data.length * BYTES[p.dtype];
    p.end = offset;
  }
  const header: Record<string, unknown> = {};
  if (options.metadata !== undefined) {
    for (const [k, v] of Object.entries(options.metadata))
      if (typeof v !== 'string') throw invalid(`${where}: metadata '${k}' must be a string`);
    header.__metadata__ = Object.fromEntries(Object.entries(options.metadata).sort(([a], [b]) => (a < b ? -1 : 1)));
  }
  for (const p of [...list].sort((a, b) => (a.name < b.name ? -1 : 1)))
    header[p.name] = { dtype: p.dtype, shape: p.shape, data_offsets: [p.begin, p.end] };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + padded).fill(0x20);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, 8);
  return { header: bytes, planned: byData, dataBytes: offset };
}

/** The stored bytes of one planned tensor. */
function tensorBytes(p: Planned): Uint8Array {
  const src = new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength);
  if (p.dtype === 'F32') return src;
  const out = new Uint8Array(p.data.length * BYTES[p.dtype]);
  convertFloats(src, 'f32', out, TO_FLOAT[p.dtype], p.data.length);
  return out;
}

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

/**
 * Writes `tensors` to `file` as safetensors, atomically (temporary file + fsync + rename). The
 * tensors are converted one at a time, so memory holds one narrowed tensor at most.
 */
export async function writeSafetensors(
  file: string,
  tensors: ReadonlyMap<string, TensorToWrite> | Readonly<Record<string, TensorToWrite>>,
  options: WriteSafetensorsOptions = {},
): Promise<void> {
  const { header, planned } = plan(tensors, options, file);
  const tmp = tempPathFor(file);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'wx');
    await writeAll(fh, header);
    for (const p of planned) await writeAll(fh, tensorBytes(p));
    await fh.sync();
    await fh.close();
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
