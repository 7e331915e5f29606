/**
 * errors.ts — the one error shape of motif-native.
 *
 * Every error the package raises on purpose is a MotifError with a stable `code`
 * (ERR_MOTIF_*). Errors from the native addon keep their code and get the stack of
 * the JS call that started the native work (withJsStack).
 */

export type MotifErrorCode =
  | 'ERR_MOTIF_INVALID_ARGUMENT'
  | 'ERR_MOTIF_IO'
  | 'ERR_MOTIF_FORMAT'
  | 'ERR_MOTIF_UNSUPPORTED'
  | 'ERR_MOTIF_OUT_OF_MEMORY'
  | 'ERR_MOTIF_DISPOSED'
  | 'ERR_MOTIF_BUSY'
  | 'ERR_MOTIF_ADDON_LOAD'
  | 'ERR_MOTIF_INTERNAL';

export class MotifError extends Error {
  readonly code: MotifErrorCode;
  constructor(code: MotifErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MotifError';
    this.code = code;
  }
}

/** An argument that is not what the API expects: "Expected <expected> for <name> but received <actual>". */
export function invalidParameterError(name: string, expected: string, actual: unknown): MotifError {
  return new MotifError(
    'ERR_MOTIF_INVALID_ARGUMENT',
    `Expected ${expected} for ${name} but received ${describe(actual)}`,
  );
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of length ${(v as unknown as { length: number }).length}`;
  return typeof v === 'function' ? 'a function' : `an object (${Object.prototype.toString.call(v)})`;
}

/**
 * Converts an error thrown or returned by the addon into a MotifError carrying the stack of
 * `jsStack` (an Error created before the native call), so rejections point at user code.
 */
export function withJsStack(err: unknown, jsStack: Error): MotifError {
  if (err instanceof MotifError) return err;
  const e = err as { message?: string; code?: string };
  const code = (
    typeof e?.code === 'string' && e.code.startsWith('ERR_MOTIF_') ? e.code : 'ERR_MOTIF_INTERNAL'
  ) as MotifErrorCode;
  const out = new MotifError(code, e?.message ?? String(err), { cause: err });
  if (err instanceof TypeError || err instanceof RangeError) {
    (out as { code: MotifErrorCode }).code = 'ERR_MOTIF_INVALID_ARGUMENT';
  }
  const frames = jsStack.stack?.split('\n').slice(1).join('\n');
  if (frames) out.stack = `${out.name}: ${out.message}\n${frames}`;
  return out;
}
