/**
 * dtypes.ts — conversions between the float formats of model files (f32, f16, bf16), on raw
 * little-endian bytes, for the format writers (GGUF export).
 *
 * Narrowing rounds to nearest, ties to even (what PyTorch's `.to(torch.float16 / bfloat16)` and
 * numpy's `astype` do): f16 keeps subnormals and overflows to ±inf; NaN stays NaN (quiet).
 * Widening is exact. Buffers are viewed as typed arrays, so callers pass byte arrays whose
 * offset is a multiple of the element size (a fresh Uint8Array always is).
 */
import { MotifError } from '../native/errors.js';

/** The float formats the converters handle. */
export type FloatDtype = 'f32' | 'f16' | 'bf16';

/** Bytes per element. */
export const FLOAT_DTYPE_BYTES: Readonly<Record<FloatDtype, number>> = Object.freeze({ f32: 4, f16: 2, bf16: 2 });

let f16Table: Float32Array | undefined;

/** f16 bits -> f32 value for all 65536 patterns (built once, 256 KiB). */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const out = new Float32Array(65536);
  const bits = new Uint32Array(out.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) {
      bits[h] = sign | 0x7f800000 | (mant << 13);
    } else if (exp !== 0) {
      bits[h] = sign | ((exp + 112) << 23) | (mant << 13);
    } else {
      // zero or subnormal: mant * 2^-24, exactly representable in f32
      out[h] = (sign ? -1 : 1) * mant * 2 ** -24;
    }
  }
  f16Table = out;
  return out;
}

/** f16 bits -> f32 value. */
export function f16ToF32(h: number): number {
  return halfTable()[h & 0xffff];
}

/** f32 bits (uint32) -> f16 bits, round to nearest even; overflow to ±inf, NaN stays NaN. */
export function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // f16 subnormal (or zero): m = round(M * 2^(e - 14)) with M the 24-bit significand
    const shift = 14 - e;
    if (shift > 24) return sign;
    const M = mant | 0x800000;
    let m = M >>> shift;
    const rem = M & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1) !== 0)) m++;
    return sign | m; // m may reach 0x400: the smallest normal, encoded correctly
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry rolls into the exponent (to inf at the top)
  return h;
}

/** f32 bits (uint32) -> bf16 bits, round to nearest even; NaN stays NaN (quiet). */
export function f32BitsToBf16(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

function view32(b: Uint8Array, n: number): Uint32Array {
  if (b.byteOffset % 4 !== 0) throw new MotifError('ERR_MOTIF_INTERNAL', 'dtype conversion: unaligned f32 buffer');
  return new Uint32Array(b.buffer, b.byteOffset, n);
}

function view16(b: Uint8Array, n: number): Uint16Array {
  if (b.byteOffset % 2 !== 0) throw new MotifError('ERR_MOTIF_INTERNAL', 'dtype conversion: unaligned 16-bit buffer');
  return new Uint16Array(b.buffer, b.byteOffset, n);
}

/**
 * Converts `n` elements from `src` (bytes of `from`) into `dst` (bytes of `to`). Same dtype copies.
 * `src` and `dst` must not overlap.
 */
export function convertFloats(src: Uint8Array, from: FloatDtype, dst: Uint8Array, to: FloatDtype, n: number): void {
  if (src.byteLength < n * FLOAT_DTYPE_BYTES[from] || dst.byteLength < n * FLOAT_DTYPE_BYTES[to])
    throw new MotifError('ERR_MOTIF_INTERNAL', `dtype conversion: buffers too small for ${n} elements`);
  if (from === to) {
    dst.set(src.subarray(0, n * FLOAT_DTYPE_BYTES[from]));
    return;
  }
  if (from === 'f32') {
    const s = view32(src, n);
    const d = view16(dst, n);
    if (to === 'bf16') for (let i = 0; i < n; i++) d[i] = f32BitsToBf16(s[i]);
    else for (let i = 0; i < n; i++) d[i] = f32BitsToF16(s[i]);
    return;
  }
  const s = view16(src, n);
  if (to === 'f32') {
    if (from === 'bf16') {
      const d = view32(dst, n);
      for (let i = 0; i < n; i++) d[i] = s[i] << 16;
    } else {
      const t = halfTable();
      const d = new Float32Array(dst.buffer, dst.byteOffset, n);
      for (let i = 0; i < n; i++) d[i] = t[s[i]];
    }
    return;
  }
  const d = view16(dst, n);
  const f = new Float32Array(1);
  const fb = new Uint32Array(f.buffer);
  if (from === 'bf16') {
    // bf16 -> f16: widen exactly, then round once
    for (let i = 0; i < n; i++) d[i] = f32BitsToF16(s[i] << 16);
  } else {
    const t = halfTable();
    for (let i = 0; i < n; i++) {
      f[0] = t[s[i]];
      d[i] = f32BitsToBf16(fb[0]);
    }
  }
}
