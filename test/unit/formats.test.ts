/**
 * formats.test.ts — lib/formats without the addon: the safetensors reader (valid files, sharded
 * folders, and hostile headers rejected with errors naming file and tensor), the float conversions
 * (hand-computed round-to-nearest-even cases, exhaustive round trips) and the GGUF writer's layout
 * read back by the independent reader in test/helpers/gguf-reader.ts.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convertFloats, f16ToF32, f32BitsToBf16, f32BitsToF16 } from '../../lib/formats/dtypes.js';
import { GgufFileWriter, gguf, layoutGguf } from '../../lib/formats/gguf.js';
import { openSafetensorsModel, SafetensorsFile } from '../../lib/formats/safetensors.js';
import { MotifError } from '../../lib/native/errors.js';
import { ggufTensorF32, ggufValue, readGguf } from '../helpers/gguf-reader.js';
import { safetensorsBytes } from '../helpers/tiny-model.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-formats-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function bits(x: number): number {
  const f = new Float32Array([x]);
  return new Uint32Array(f.buffer)[0];
}

function rejectsWith(code: string, pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof MotifError, `expected a MotifError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  };
}

/** A safetensors file from a header object and a data section of `dataBytes` bytes. */
function rawSafetensors(header: unknown, dataBytes: number): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + dataBytes);
  out.writeBigUInt64LE(BigInt(json.length));
  json.copy(out, 8);
  return out;
}

describe('safetensors reader', () => {
  it('reads tensors whole and by range, with dtype and shape', async () => {
    const a = Float32Array.from({ length: 12 }, (_, i) => i * 0.5);
    const b = Float32Array.from([7, 8, 9]);
    const file = path.join(tmp, 'ok.safetensors');
    await writeFile(
      file,
      safetensorsBytes([
        { name: 'a', shape: [3, 4], data: a },
        { name: 'b', shape: [3], data: b },
      ]),
    );
    const f = await SafetensorsFile.open(file);
    try {
      assert.deepEqual([...f.tensors.keys()], ['a', 'b']);
      const t = await f.read('a');
      assert.equal(t.dtype, 'F32');
      assert.deepEqual(t.shape, [3, 4]);
      assert.deepEqual(new Float32Array(t.data.buffer, t.data.byteOffset, 12), a);
      const row1 = await f.readRange('a', 16, 16);
      assert.deepEqual(new Float32Array(row1.buffer, row1.byteOffset, 4), a.subarray(4, 8));
      await assert.rejects(f.readRange('a', 40, 16), rejectsWith('ERR_MOTIF_INVALID_ARGUMENT', /run past/));
      assert.throws(() => f.get('zzz'), rejectsWith('ERR_MOTIF_FORMAT', /ok\.safetensors: no tensor 'zzz'/));
    } finally {
      await f.close();
    }
    await assert.rejects(f.read('a'), rejectsWith('ERR_MOTIF_DISPOSED', /closed/));
  });

  it('rejects hostile headers, naming the file and the tensor', async () => {
    const cases: Array<[string, Buffer, RegExp]> = [
      ['short', Buffer.alloc(5), /too short/],
      [
        'len-past-end',
        (() => {
          const b = Buffer.alloc(16);
          b.writeBigUInt64LE(1000n);
          return b;
        })(),
        /runs past the end of the file/,
      ],
      [
        'not-json',
        (() => {
          const j = Buffer.from('{"a": [');
          const b = Buffer.alloc(8 + j.length);
          b.writeBigUInt64LE(BigInt(j.length));
          j.copy(b, 8);
          return b;
        })(),
        /not valid JSON/,
      ],
      ['array-root', rawSafetensors([1, 2], 0), /must be a JSON object/],
      [
        'bad-dtype',
        rawSafetensors({ w: { dtype: 'F17', shape: [1], data_offsets: [0, 4] } }, 4),
        /tensor 'w': dtype "F17"/,
      ],
      ['bad-shape', rawSafetensors({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /tensor 'w': shape/],
      [
        'bad-offsets',
        rawSafetensors({ w: { dtype: 'F32', shape: [2], data_offsets: [0] } }, 8),
        /tensor 'w': 'data_offsets' must be/,
      ],
      [
        'size-mismatch',
        rawSafetensors({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, 16),
        /tensor 'w': 12 bytes of data for shape \[2, 2\] of F32 \(expected 16\)/,
      ],
      [
        'outside',
        rawSafetensors({ w: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, 16),
        /tensor 'w': data_offsets \[8, 24\] run outside the data section \(16 bytes\)/,
      ],
      [
        'overlap',
        rawSafetensors(
          {
            x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
          },
          12,
        ),
        /tensors 'x' and 'y' overlap/,
      ],
    ];
    for (const [name, bytes, pattern] of cases) {
      const file = path.join(tmp, `${name}.safetensors`);
      await writeFile(file, bytes);
      await assert.rejects(SafetensorsFile.open(file), rejectsWith('ERR_MOTIF_FORMAT', pattern), name);
      await assert.rejects(SafetensorsFile.open(file), (e: Error) => e.message.includes(file), name);
    }
    await assert.rejects(
      SafetensorsFile.open(path.join(tmp, 'missing.safetensors')),
      rejectsWith('ERR_MOTIF_IO', /missing\.safetensors: cannot open the safetensors file \(no such file\)/),
    );
  });

  it('opens sharded folders through model.safetensors.index.json and checks the index', async () => {
    const dir = path.join(tmp, 'sharded');
    await mkdir(dir);
    await writeFile(
      path.join(dir, 'p1.safetensors'),
      safetensorsBytes([{ name: 'a', shape: [2], data: Float32Array.from([1, 2]) }]),
    );
    await writeFile(
      path.join(dir, 'p2.safetensors'),
      safetensorsBytes([{ name: 'b', shape: [1], data: Float32Array.from([3]) }]),
    );
    const index = (map: Record<string, string>) =>
      writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: map }));
    await index({ a: 'p1.safetensors', b: 'p2.safetensors' });
    const m = await openSafetensorsModel(dir);
    try {
      assert.equal(m.files.length, 2);
      assert.deepEqual([...m.tensors.keys()].sort(), ['a', 'b']);
      const b = await m.read('b');
      assert.equal(new Float32Array(b.data.buffer, b.data.byteOffset, 1)[0], 3);
      assert.throws(
        () => m.get('c'),
        rejectsWith('ERR_MOTIF_FORMAT', /tensor 'c' is missing from the weights in .*sharded/),
      );
    } finally {
      await m.close();
    }
    await index({ a: 'p1.safetensors', b: 'p1.safetensors' });
    await assert.rejects(
      openSafetensorsModel(dir),
      rejectsWith('ERR_MOTIF_FORMAT', /tensor 'b' is mapped to p1\.safetensors but is not in it/),
    );
    await index({ a: 'p1.safetensors', b: 'p3.safetensors' });
    await assert.rejects(openSafetensorsModel(dir), rejectsWith('ERR_MOTIF_IO', /lists shard p3\.safetensors/));
    await index({ a: '../p1.safetensors' });
    await assert.rejects(openSafetensorsModel(dir), rejectsWith('ERR_MOTIF_FORMAT', /must be a plain file name/));
    await assert.rejects(openSafetensorsModel(path.join(tmp, 'nope')), rejectsWith('ERR_MOTIF_IO', /nope/));
    const empty = path.join(tmp, 'empty');
    await mkdir(empty);
    await assert.rejects(
      openSafetensorsModel(empty),
      rejectsWith('ERR_MOTIF_IO', /expected model\.safetensors or model\.safetensors\.index\.json/),
    );
  });
});

describe('float conversions', () => {
  it('f32 -> f16 rounds to nearest even, with subnormals, overflow and NaN', () => {
    const cases: Array<[number, number]> = [
      [1, 0x3c00],
      [-2, 0xc000],
      [0.1, 0x2e66],
      [65504, 0x7bff],
      [65519.99, 0x7bff],
      [65520, 0x7c00], // halfway to 65536: ties to even -> inf
      [1e9, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000], // halfway between 0 and the smallest subnormal: even -> 0
      [3 * 2 ** -26, 0x0001],
      [3 * 2 ** -25, 0x0002], // 1.5 subnormal ulps: ties to even -> 2
      [2 ** -14, 0x0400],
      [2 ** -14 - 2 ** -25, 0x0400], // rounds up into the smallest normal
      [1 + 2 ** -11, 0x3c00], // tie -> even
      [1 + 3 * 2 ** -11, 0x3c02], // tie -> even
      [1 + 2 ** -11 + 2 ** -20, 0x3c01],
      [-0, 0x8000],
    ];
    for (const [x, h] of cases) assert.equal(f32BitsToF16(bits(x)), h, `f16(${x})`);
    const nan = f32BitsToF16(bits(Number.NaN));
    assert.equal(nan & 0x7c00, 0x7c00);
    assert.notEqual(nan & 0x3ff, 0);
  });

  it('f32 -> bf16 rounds to nearest even; NaN stays NaN', () => {
    const cases: Array<[number, number]> = [
      [1, 0x3f80],
      [0.1, 0x3dcd],
      [1 + 2 ** -8, 0x3f80],
      [1 + 3 * 2 ** -8, 0x3f82],
      [1 + 2 ** -8 + 2 ** -20, 0x3f81],
      [3.4e38, 0x7f80],
      [-0, 0x8000],
    ];
    for (const [x, h] of cases) assert.equal(f32BitsToBf16(bits(x)), h, `bf16(${x})`);
    const nan = f32BitsToBf16(0x7f800001);
    assert.equal(nan & 0x7f80, 0x7f80);
    assert.notEqual(nan & 0x7f, 0);
  });

  it('widening is exact: every f16 and bf16 value survives f16/bf16 -> f32 -> back', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const src = new Uint8Array(all.buffer);
    const wide = new Uint8Array(65536 * 4);
    const back = new Uint8Array(65536 * 2);
    for (const d of ['f16', 'bf16'] as const) {
      convertFloats(src, d, wide, 'f32', 65536);
      convertFloats(wide, 'f32', back, d, 65536);
      const b = new Uint16Array(back.buffer);
      for (let i = 0; i < 65536; i++) {
        const nanBits =
          d === 'f16' ? (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0 : (i & 0x7f80) === 0x7f80 && (i & 0x7f) !== 0;
        if (!nanBits) assert.equal(b[i], i, `${d} 0x${i.toString(16)}`);
      }
    }
    assert.equal(f16ToF32(0x3c00), 1);
    assert.equal(f16ToF32(0x0001), 2 ** -24);
    assert.equal(f16ToF32(0xfbff), -65504);
  });

  it('bf16 <-> f16 goes through f32 with one rounding', () => {
    const src = new Uint8Array(new Uint16Array([0x3f80, 0x3dcd, 0x4780]).buffer); // 1, ~0.1, 65536
    const out = new Uint8Array(6);
    convertFloats(src, 'bf16', out, 'f16', 3);
    assert.deepEqual([...new Uint16Array(out.buffer)], [0x3c00, f32BitsToF16(0x3dcd0000), 0x7c00]);
  });
});

describe('GGUF writer', () => {
  it('writes header, every metadata value type, tensor infos and aligned data', async () => {
    const out = path.join(tmp, 'w.gguf');
    const metadata = [
      ['general.architecture', gguf.str('llama')],
      ['t.u8', gguf.u8(200)],
      ['t.i8', gguf.i8(-100)],
      ['t.u16', gguf.u16(60000)],
      ['t.i16', gguf.i16(-30000)],
      ['t.u32', gguf.u32(4000000000)],
      ['t.i32', gguf.i32(-2000000000)],
      ['t.f32', gguf.f32(0.25)],
      ['t.f64', gguf.f64(1 / 3)],
      ['t.u64', gguf.u64(2n ** 40n)],
      ['t.i64', gguf.i64(-5n)],
      ['t.bool', gguf.bool(true)],
      ['t.str', gguf.str('héllo ✓')],
      ['t.arr', gguf.arr('string', ['a', '', 'ü'])],
      ['t.arri', gguf.arr('int32', [1, -2, 3])],
    ] as const;
    const tensors = [
      { name: 'a', shape: [2, 3], type: 'F32' as const },
      { name: 'b', shape: [5], type: 'F16' as const },
      { name: 'c', shape: [3, 1], type: 'BF16' as const },
    ];
    const w = await GgufFileWriter.create(out, metadata, tensors);
    await w.write(new Uint8Array(Float32Array.from([1, 2, 3, 4, 5, 6]).buffer).subarray(0, 12));
    await w.write(new Uint8Array(Float32Array.from([1, 2, 3, 4, 5, 6]).buffer).subarray(12));
    await w.write(new Uint8Array(Uint16Array.from([0x3c00, 0x4000, 0x4200, 0x4400, 0x4500]).buffer));
    await assert.rejects(w.write(new Uint8Array(8)), /given 8 bytes, expected 6/);
    await w.write(new Uint8Array(Uint16Array.from([0x3f80, 0x4000, 0x4040]).buffer));
    await w.commit();
    const f = readGguf(out);
    assert.equal(f.version, 3);
    assert.equal(f.alignment, 32);
    for (const [k, v] of metadata) {
      const got = ggufValue(f, k);
      assert.deepEqual(got, v.type === 'float32' ? Math.fround(v.value as number) : v.value, k);
    }
    assert.deepEqual(
      f.tensors.map((t) => [t.name, t.dims, t.type]),
      [
        ['a', [3, 2], 0],
        ['b', [5], 1],
        ['c', [1, 3], 30],
      ],
    );
    assert.ok(f.tensors.every((t) => (t.offset - f.dataStart) % 32 === 0));
    assert.deepEqual([...ggufTensorF32(f, 'a')], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual([...ggufTensorF32(f, 'b')], [1, 2, 3, 4, 5]);
    assert.deepEqual([...ggufTensorF32(f, 'c')], [1, 2, 3]);
    assert.deepEqual(
      (await readdir(tmp)).filter((n) => n.includes('.tmp-')),
      [],
    );
  });

  it('rejects bad metadata and tensors; abort leaves nothing behind', async () => {
    const bad =
      (md: Parameters<typeof layoutGguf>[0], t: Parameters<typeof layoutGguf>[1] = []) =>
      () =>
        layoutGguf(md, t);
    assert.throws(bad([['k', gguf.u8(256)]]), rejectsWith('ERR_MOTIF_INVALID_ARGUMENT', /'k': 256 is not a uint8/));
    assert.throws(bad([['k', gguf.u32(1.5)]]), /is not a uint32/);
    assert.throws(bad([['k', gguf.arr('uint16', [1, -1])]]), /-1 is not a uint16/);
    assert.throws(
      bad([
        ['k', gguf.str('a')],
        ['k', gguf.str('b')],
      ]),
      /appears twice/,
    );
    assert.throws(bad([['general.alignment', gguf.u32(12)]]), /power of two/);
    assert.throws(bad([], [{ name: 'x', shape: [0], type: 'F32' }]), /positive dimensions/);
    assert.throws(bad([], [{ name: 'x'.repeat(65), shape: [1], type: 'F32' }]), /1 to 64 bytes/);
    const l = layoutGguf(
      [['general.alignment', gguf.u32(64)]],
      [
        { name: 'x', shape: [3], type: 'F32' },
        { name: 'y', shape: [3], type: 'F32' },
      ],
    );
    assert.equal(l.alignment, 64);
    assert.equal(l.header.length % 64, 0);
    assert.equal(l.tensorOffsets[1] - l.tensorOffsets[0], 64);
    const out = path.join(tmp, 'aborted.gguf');
    const w = await GgufFileWriter.create(out, [], [{ name: 'x', shape: [3], type: 'F32' }]);
    await assert.rejects(w.commit(), /incomplete/);
    await w.abort();
    assert.deepEqual(
      (await readdir(tmp)).filter((n) => n.includes('aborted')),
      [],
    );
  });
});
