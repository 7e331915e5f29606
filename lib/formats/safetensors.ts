/**
 * safetensors.ts — a TypeScript reader for HuggingFace model folders' safetensors weights.
 *
 * A folder holds either one `model.safetensors` or shards listed in `model.safetensors.index.json`
 * (`weight_map`: tensor name -> file name), the same rule the native engine follows (weights.cpp).
 * Opening a file reads only its header (8-byte little-endian length + JSON) and validates it: every
 * entry's dtype, shape and data_offsets, bytes consistent with the shape, inside the data section,
 * no two tensors overlapping. Tensor bytes are read on demand with positioned reads from a file
 * handle kept open until close(), whole or by byte range, so a converter can stream a tensor in
 * chunks without loading whole files.
 *
 * Every failure is a MotifError: ERR_MOTIF_IO (a file that cannot be opened or read) or
 * ERR_MOTIF_FORMAT (content that is not valid safetensors), naming the file and the tensor.
 */
import { type FileHandle, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { MotifError } from '../native/errors.js';

/** The dtypes of the safetensors format. */
export type SafetensorsDtype =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'F8_E5M2'
  | 'F8_E4M3'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'F64'
  | 'I64'
  | 'U64';

/** Bytes per element of each safetensors dtype. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = Object.freeze({
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
});

/** Where one tensor's bytes are: dtype, shape (row-major, outermost first) and the absolute byte range in its file. */
export interface SafetensorsTensor {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Number of elements (product of the shape; 1 for a scalar). */
  readonly numel: number;
  /** Absolute path of the file holding the tensor. */
  readonly file: string;
  /** Absolute byte offset of the tensor's data in its file. */
  readonly dataOffset: number;
  readonly byteLength: number;
}

/** A tensor read whole: its description and its raw little-endian bytes. */
export interface SafetensorsData extends SafetensorsTensor {
  readonly data: Uint8Array;
}

/** Safetensors caps the JSON header at 100 MiB; a larger length means a corrupt or foreign file. */
const MAX_HEADER_BYTES = 100 * 2 ** 20;
const MAX_DIMS = 8;

function ioError(file: string, what: string, err: unknown): MotifError {
  const e = err as NodeJS.ErrnoException;
  const why =
    e?.code === 'ENOENT'
      ? 'no such file'
      : e?.code === 'EACCES'
        ? 'permission denied'
        : e?.code === 'EISDIR'
          ? 'is a folder, not a file'
          : (e?.message ?? String(err));
  return new MotifError('ERR_MOTIF_IO', `${file}: cannot ${what} (${why})`, { cause: err });
}

function formatError(message: string): MotifError {
  return new MotifError('ERR_MOTIF_FORMAT', message);
}

function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Reads exactly `length` bytes at `position` into `into` (or a new buffer); short reads are an IO error. */
async function readExactly(
  fh: FileHandle,
  file: string,
  position: number,
  length: number,
  into?: Uint8Array,
): Promise<Uint8Array> {
  const out = into ?? new Uint8Array(length);
  if (out.byteLength < length)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      `read buffer of ${out.byteLength} bytes is shorter than ${length}`,
    );
  let done = 0;
  while (done < length) {
    let n: number;
    try {
      ({ bytesRead: n } = await fh.read(out, done, length - done, position + done));
    } catch (err) {
      throw ioError(file, `read ${length} bytes at offset ${position}`, err);
    }
    if (n === 0)
      throw new MotifError(
        'ERR_MOTIF_IO',
        `${file}: unexpected end of file reading ${length} bytes at offset ${position} (the file was truncated?)`,
      );
    done += n;
  }
  return out;
}

/**
 * Parses and validates a safetensors header (`json`, the text after the 8-byte length) of a file whose
 * data section starts at `dataStart` and holds `dataSize` bytes. Exported for tests and tools.
 */
export function parseSafetensorsHeader(
  file: string,
  json: string,
  dataStart: number,
  dataSize: number,
): { tensors: Map<string, SafetensorsTensor>; metadata: Record<string, string> } {
  let root: unknown;
  try {
    root = JSON.parse(json);
  } catch (err) {
    throw formatError(`${file}: the safetensors header is not valid JSON (${(err as Error).message})`);
  }
  if (root === null || typeof root !== 'object' || Array.isArray(root))
    throw formatError(`${file}: the safetensors header must be a JSON object of tensor name -> entry`);
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [name, entry] of Object.entries(root as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry))
        throw formatError(`${file}: '__metadata__' must be an object of strings`);
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') throw formatError(`${file}: __metadata__['${k}'] must be a string`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `${file}: tensor '${name}'`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry))
      throw formatError(`${where}: header entry must be an object with dtype, shape and data_offsets`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== 'string' || !Object.hasOwn(SAFETENSORS_DTYPE_BYTES, dtype))
      throw formatError(
        `${where}: dtype ${JSON.stringify(dtype)} is not a safetensors dtype (${Object.keys(SAFETENSORS_DTYPE_BYTES).join(', ')})`,
      );
    if (!Array.isArray(shape)) throw formatError(`${where}: 'shape' must be an array of non-negative integers`);
    if (shape.length > MAX_DIMS)
      throw formatError(`${where}: shape has ${shape.length} dimensions (at most ${MAX_DIMS})`);
    let numel = 1;
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || d < 0)
        throw formatError(`${where}: shape ${JSON.stringify(shape)} must hold non-negative integers`);
      numel *= d;
    }
    if (!Number.isSafeInteger(numel)) throw formatError(`${where}: shape ${shapeString(shape)} is implausibly large`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !Number.isSafeInteger(offsets[0]) ||
      !Number.isSafeInteger(offsets[1])
    )
      throw formatError(`${where}: 'data_offsets' must be [begin, end] integers`);
    const [begin, end] = offsets as [number, number];
    if (begin < 0 || end < begin || end > dataSize)
      throw formatError(
        `${where}: data_offsets [${begin}, ${end}] run outside the data section (${dataSize} bytes); the file is truncated or corrupt`,
      );
    const dt = dtype as SafetensorsDtype;
    const expected = numel * SAFETENSORS_DTYPE_BYTES[dt];
    if (end - begin !== expected)
      throw formatError(
        `${where}: ${end - begin} bytes of data for shape ${shapeString(shape)} of ${dt} (expected ${expected})`,
      );
    tensors.set(name, {
      name,
      dtype: dt,
      shape: Object.freeze([...(shape as number[])]),
      numel,
      file,
      dataOffset: dataStart + begin,
      byteLength: expected,
    });
  }
  const sorted = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.dataOffset - b.dataOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (sorted[i].dataOffset < prev.dataOffset + prev.byteLength)
      throw formatError(`${file}: tensors '${prev.name}' and '${sorted[i].name}' overlap in the data section`);
  }
  return { tensors, metadata };
}

/** One open .safetensors file: its validated header, and positioned reads of its tensors. */
export class SafetensorsFile implements AsyncDisposable {
  /** Absolute path of the file. */
  readonly path: string;
  /** The header's `__metadata__` (string -> string), empty when absent. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The tensors of the file by name, in header order. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
  /** @internal */
  private _fh: FileHandle | undefined;

  /** @internal Use SafetensorsFile.open(). */
  private constructor(
    file: string,
    fh: FileHandle,
    tensors: Map<string, SafetensorsTensor>,
    metadata: Record<string, string>,
  ) {
    this.path = file;
    this._fh = fh;
    this.tensors = tensors;
    this.metadata = Object.freeze(metadata);
  }

  /**
   * Opens a .safetensors file and validates its header (nothing else is read).
   * Rejects with ERR_MOTIF_IO when it cannot be read, ERR_MOTIF_FORMAT when it is not valid safetensors.
   */
  static async open(file: string): Promise<SafetensorsFile> {
    const abs = path.resolve(file);
    let fh: FileHandle;
    try {
      fh = await open(abs, 'r');
    } catch (err) {
      throw ioError(abs, 'open the safetensors file', err);
    }
    try {
      let size: number;
      try {
        const st = await fh.stat();
        if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
        size = st.size;
      } catch (err) {
        throw ioError(abs, 'stat the safetensors file', err);
      }
      if (size < 8)
        throw formatError(`${abs}: file is ${size} bytes, too short for a safetensors header (8-byte length + JSON)`);
      const head = await readExactly(fh, abs, 0, 8);
      const headerLen = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
      if (headerLen > BigInt(size - 8))
        throw formatError(
          `${abs}: header length ${headerLen} runs past the end of the file (${size} bytes); the file is truncated or not safetensors`,
        );
      if (headerLen > BigInt(MAX_HEADER_BYTES))
        throw formatError(`${abs}: header length ${headerLen} is over 100 MiB; the file is corrupt or not safetensors`);
      const n = Number(headerLen);
      const jsonBytes = await readExactly(fh, abs, 8, n);
      let json: string;
      try {
        json = new TextDecoder('utf-8', { fatal: true }).decode(jsonBytes);
      } catch {
        throw formatError(`${abs}: the safetensors header is not valid UTF-8`);
      }
      const { tensors, metadata } = parseSafetensorsHeader(abs, json, 8 + n, size - 8 - n);
      return new SafetensorsFile(abs, fh, tensors, metadata);
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
  }

  /** The tensor called `name`; ERR_MOTIF_FORMAT naming the file when it has none. */
  get(name: string): SafetensorsTensor {
    const t = this.tensors.get(name);
    if (!t) throw formatError(`${this.path}: no tensor '${name}' in this file`);
    return t;
  }

  /**
   * Reads `length` bytes starting `start` bytes into tensor `name`'s data (into `into` when given,
   * which must hold at least `length` bytes). The range must lie inside the tensor.
   */
  async readRange(name: string, start: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const t = this.get(name);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || start < 0 || length < 0)
      throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', `readRange('${name}'): start and length must be integers ≥ 0`);
    if (start + length > t.byteLength)
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `readRange('${name}'): bytes [${start}, ${start + length}) run past the tensor's ${t.byteLength} bytes`,
      );
    return readExactly(this._handle(), this.path, t.dataOffset + start, length, into);
  }

  /** Reads tensor `name` whole: its description plus its raw bytes. */
  async read(name: string): Promise<SafetensorsData> {
    const t = this.get(name);
    return { ...t, data: await this.readRange(name, 0, t.byteLength) };
  }

  /** Closes the file handle; later reads reject. */
  async close(): Promise<void> {
    const fh = this._fh;
    this._fh = undefined;
    await fh?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal */
  private _handle(): FileHandle {
    if (!this._fh) throw new MotifError('ERR_MOTIF_DISPOSED', `${this.path}: the safetensors file has been closed`);
    return this._fh;
  }
}

/** Parses model.safetensors.index.json text into tensor name -> plain file name. Exported for tests. */
export function parseSafetensorsIndex(file: string, text: string): Map<string, string> {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (err) {
    throw formatError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  const wm = (root as { weight_map?: unknown } | null)?.weight_map;
  if (wm === null || typeof wm !== 'object' || Array.isArray(wm))
    throw formatError(`${file}: field 'weight_map' must be an object of tensor name -> file name`);
  const out = new Map<string, string>();
  for (const [name, f] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof f !== 'string') throw formatError(`${file}: weight_map['${name}'] must be a file name string`);
    if (f === '' || f === '.' || f === '..' || f.includes('/') || f.includes('\\') || f.includes('\0'))
      throw formatError(`${file}: weight_map['${name}'] = '${f}' must be a plain file name in the model folder`);
    out.set(name, f);
  }
  return out;
}

/**
 * The safetensors weights of a HuggingFace model folder: `model.safetensors`, or the shards of
 * `model.safetensors.index.json`, seen as one set of tensors.
 */
export class SafetensorsModel implements AsyncDisposable {
  /** Absolute path of the folder. */
  readonly dir: string;
  /** The open files (one, or the shards in name order). */
  readonly files: readonly SafetensorsFile[];
  /** Every tensor by name. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
  /** @internal */
  private readonly _byFile: Map<string, SafetensorsFile>;

  /** @internal Use SafetensorsModel.open() or openSafetensorsModel(). */
  private constructor(dir: string, files: SafetensorsFile[], tensors: Map<string, SafetensorsTensor>) {
    this.dir = dir;
    this.files = Object.freeze(files);
    this.tensors = tensors;
    this._byFile = new Map(files.map((f) => [f.path, f]));
  }

  /**
   * Opens the weights of model folder `dir` and validates every header and the index.
   * ERR_MOTIF_IO for a missing folder or file, ERR_MOTIF_FORMAT for bad content.
   */
  static async open(dir: string): Promise<SafetensorsModel> {
    const abs = path.resolve(dir);
    try {
      const st = await stat(abs);
      if (!st.isDirectory())
        throw new MotifError('ERR_MOTIF_IO', `${abs} is not a folder: expected a HuggingFace model folder`);
    } catch (err) {
      if (err instanceof MotifError) throw err;
      throw ioError(abs, 'open the model folder', err);
    }
    const single = path.join(abs, 'model.safetensors');
    const indexPath = path.join(abs, 'model.safetensors.index.json');
    const exists = (p: string) =>
      stat(p).then(
        () => true,
        () => false,
      );
    if (await exists(single)) {
      const f = await SafetensorsFile.open(single);
      return new SafetensorsModel(abs, [f], new Map(f.tensors));
    }
    if (!(await exists(indexPath)))
      throw new MotifError(
        'ERR_MOTIF_IO',
        `no weights in ${abs}: expected model.safetensors or model.safetensors.index.json`,
      );
    let text: string;
    try {
      text = await readFile(indexPath, 'utf8');
    } catch (err) {
      throw ioError(indexPath, 'read the sharded weights index', err);
    }
    const map = parseSafetensorsIndex(indexPath, text);
    const shardNames = [...new Set(map.values())].sort();
    const files: SafetensorsFile[] = [];
    try {
      for (const s of shardNames) {
        const p = path.join(abs, s);
        if (!(await exists(p)))
          throw new MotifError('ERR_MOTIF_IO', `${indexPath} lists shard ${s}, which is not in ${abs}`);
        files.push(await SafetensorsFile.open(p));
      }
      const tensors = new Map<string, SafetensorsTensor>();
      for (const f of files) {
        for (const t of f.tensors.values()) {
          const prev = tensors.get(t.name);
          if (prev) throw formatError(`${f.path}: tensor '${t.name}' also appears in ${path.basename(prev.file)}`);
          tensors.set(t.name, t);
        }
      }
      for (const [name, s] of map) {
        const t = tensors.get(name);
        if (!t || t.file !== path.join(abs, s))
          throw formatError(`${indexPath}: tensor '${name}' is mapped to ${s} but is not in it`);
      }
      return new SafetensorsModel(abs, files, tensors);
    } catch (err) {
      await Promise.all(files.map((f) => f.close().catch(() => {})));
      throw err;
    }
  }

  /** True when the weights hold a tensor called `name`. */
  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** The tensor called `name`; ERR_MOTIF_FORMAT naming the folder when it is missing. */
  get(name: string): SafetensorsTensor {
    const t = this.tensors.get(name);
    if (!t) throw formatError(`tensor '${name}' is missing from the weights in ${this.dir}`);
    return t;
  }

  /** Reads bytes [start, start + length) of tensor `name`'s data (see SafetensorsFile.readRange). */
  readRange(name: string, start: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    return this._file(name).readRange(name, start, length, into);
  }

  /** Reads tensor `name` whole. */
  read(name: string): Promise<SafetensorsData> {
    return this._file(name).read(name);
  }

  /** Closes every file. */
  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal */
  private _file(name: string): SafetensorsFile {
    return this._byFile.get(this.get(name).file)!;
  }
}

/** Opens the safetensors weights of HuggingFace model folder `dir` (see SafetensorsModel.open). */
export function openSafetensorsModel(dir: string): Promise<SafetensorsModel> {
  return SafetensorsModel.open(dir);
}
