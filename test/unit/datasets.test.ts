// Dataset tests: the real GSM8K / MATH-500 / AIME 2024 files load into the common row type;
// broken files (bad JSON line, missing field, wrong type, empty file) give errors naming
// file:line or are skipped and counted; Parquet files (written here by a minimal writer)
// load like JSONL; shuffling, limits and splits are deterministic.

import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { brotliCompressSync, gzipSync } from 'node:zlib';

import {
  createRng,
  DataFileError,
  guessKind,
  loadDataset,
  readJsonl,
  shuffle,
  splitTrainEval,
  streamDataset,
} from '../../lib/data/index.js';

const DATA = '../shared/data';
const FX = 'test/fixtures/text';

// ---------------------------------------------------------------------------------------
// A minimal Parquet writer (uncompressed, PLAIN, REQUIRED columns; Thrift compact protocol),
// written from the format specification so the loader can be tested on real Parquet bytes.

type Column = { name: string; type: 'string' | 'int32' | 'int64'; values: (string | number)[] };

const PHYSICAL = { int32: 1, int64: 2, string: 6 } as const;

class Thrift {
  bytes: number[] = [];
  private last: number[] = [0];
  varint(n: bigint | number): void {
    let v = BigInt(n);
    while (v >= 0x80n) {
      this.bytes.push(Number((v & 0x7fn) | 0x80n));
      v >>= 7n;
    }
    this.bytes.push(Number(v));
  }
  zigzag(n: number): void {
    const v = BigInt(n);
    this.varint(v >= 0n ? v << 1n : (-v << 1n) - 1n);
  }
  field(id: number, type: number): void {
    const delta = id - (this.last[this.last.length - 1] as number);
    if (delta > 0 && delta <= 15) this.bytes.push((delta << 4) | type);
    else {
      this.bytes.push(type);
      this.zigzag(id);
    }
    this.last[this.last.length - 1] = id;
  }
  i32(id: number, v: number): void {
    this.field(id, 5);
    this.zigzag(v);
  }
  i64(id: number, v: number): void {
    this.field(id, 6);
    this.zigzag(v);
  }
  binary(id: number, s: string): void {
    this.field(id, 8);
    const b = Buffer.from(s, 'utf8');
    this.varint(b.length);
    this.bytes.push(...b);
  }
  struct(id: number, body: () => void): void {
    this.field(id, 12);
    this.structBody(body);
  }
  structBody(body: () => void): void {
    this.last.push(0);
    body();
    this.bytes.push(0);
    this.last.pop();
  }
  list(id: number, elemType: number, n: number, each: (i: number) => void): void {
    this.field(id, 9);
    if (n < 15) this.bytes.push((n << 4) | elemType);
    else {
      this.bytes.push(0xf0 | elemType);
      this.varint(n);
    }
    for (let i = 0; i < n; i++) each(i);
  }
}

function plainValues(c: Column, from: number, to: number): Buffer {
  const parts: Buffer[] = [];
  for (const v of c.values.slice(from, to)) {
    if (c.type === 'int32') {
      const b = Buffer.alloc(4);
      b.writeInt32LE(v as number);
      parts.push(b);
    } else if (c.type === 'int64') {
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(BigInt(v));
      parts.push(b);
    } else {
      const s = Buffer.from(String(v), 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(s.length);
      parts.push(len, s);
    }
  }
  return Buffer.concat(parts);
}

/** Parquet compression codecs this writer can produce (node:zlib), with their Thrift enum values. */
const CODECS = { none: 0, gzip: 2, brotli: 4 } as const;

function compress(data: Buffer, codec: keyof typeof CODECS): Buffer {
  if (codec === 'gzip') return gzipSync(data);
  if (codec === 'brotli') return brotliCompressSync(data);
  return data;
}

function writeParquet(columns: Column[], rowGroupSize: number, codec: keyof typeof CODECS = 'none'): Buffer {
  const nRows = (columns[0] as Column).values.length;
  const chunks: Buffer[] = [Buffer.from('PAR1')];
  let offset = 4;
  const groups: { rows: number; cols: { offset: number; size: number; raw: number; n: number }[] }[] = [];
  for (let start = 0; start < nRows; start += rowGroupSize) {
    const end = Math.min(nRows, start + rowGroupSize);
    const cols: { offset: number; size: number; raw: number; n: number }[] = [];
    for (const c of columns) {
      const plain = plainValues(c, start, end);
      const data = compress(plain, codec);
      const h = new Thrift();
      h.structBody(() => {
        h.i32(1, 0); // DATA_PAGE
        h.i32(2, plain.length);
        h.i32(3, data.length);
        h.struct(5, () => {
          h.i32(1, end - start);
          h.i32(2, 0); // PLAIN
          h.i32(3, 3); // RLE
          h.i32(4, 3);
        });
      });
      const page = Buffer.concat([Buffer.from(h.bytes), data]);
      cols.push({ offset, size: page.length, raw: page.length - data.length + plain.length, n: end - start });
      chunks.push(page);
      offset += page.length;
    }
    groups.push({ rows: end - start, cols });
  }
  const m = new Thrift();
  m.structBody(() => {
    m.i32(1, 1);
    m.list(2, 12, columns.length + 1, (i) => {
      m.structBody(() => {
        if (i === 0) {
          m.binary(4, 'schema');
          m.i32(5, columns.length);
        } else {
          const c = columns[i - 1] as Column;
          m.i32(1, PHYSICAL[c.type]);
          m.i32(3, 0); // REQUIRED
          m.binary(4, c.name);
          if (c.type === 'string') m.i32(6, 0); // UTF8
        }
      });
    });
    m.i64(3, nRows);
    m.list(4, 12, groups.length, (g) => {
      const group = groups[g] as (typeof groups)[number];
      m.structBody(() => {
        m.list(1, 12, columns.length, (ci) => {
          const col = group.cols[ci] as { offset: number; size: number; raw: number; n: number };
          const c = columns[ci] as Column;
          m.structBody(() => {
            m.i64(2, col.offset);
            m.struct(3, () => {
              m.i32(1, PHYSICAL[c.type]);
              m.list(2, 5, 1, () => m.zigzag(0));
              m.list(3, 8, 1, () => {
                const b = Buffer.from(c.name);
                m.varint(b.length);
                m.bytes.push(...b);
              });
              m.i32(4, CODECS[codec]);
              m.i64(5, col.n);
              m.i64(6, col.raw);
              m.i64(7, col.size);
              m.i64(9, col.offset);
            });
          });
        });
        m.i64(
          2,
          group.cols.reduce((s, c) => s + c.size, 0),
        );
        m.i64(3, group.rows);
      });
    });
  });
  const footer = Buffer.from(m.bytes);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(footer.length);
  return Buffer.concat([...chunks, footer, len, Buffer.from('PAR1')]);
}

// ---------------------------------------------------------------------------------------

describe('real datasets', () => {
  it('loads GSM8K with the #### number as the answer', async () => {
    const ds = await loadDataset(`${DATA}/gsm8k/test.jsonl`);
    assert.equal(ds.kind, 'gsm8k');
    assert.equal(ds.data.length, 1319);
    assert.equal(ds.skipped, 0);
    const first = ds.data[0];
    assert.ok(first);
    assert.equal(first.answer, '18');
    assert.match(first.question, /^Janet’s ducks lay 16 eggs/);
    assert.match(first.solution ?? '', /#### 18$/);
    assert.deepEqual(first.source, { file: `${DATA}/gsm8k/test.jsonl`, line: 1 });
    assert.equal(first.id, 'test:1');
    for (const r of ds.data) assert.match(r.answer, /^-?\d+$/);
    // Commas are removed: some answers are written "1,200"-style.
    const train = await loadDataset(`${DATA}/gsm8k/train.jsonl`);
    assert.equal(train.data.length, 7473);
    assert.ok(train.data.some((r) => /,/.test(r.solution?.split('####').pop() ?? '')));
  });

  it('loads MATH-500 with subject, level, solution and unique_id', async () => {
    const ds = await loadDataset(`${DATA}/math500/test.jsonl`);
    assert.equal(ds.kind, 'math');
    assert.equal(ds.data.length, 500);
    const r = ds.data[0];
    assert.ok(r);
    assert.equal(r.id, 'test/precalculus/807.json');
    assert.equal(r.answer, '\\left( 3, \\frac{\\pi}{2} \\right)');
    assert.equal(r.subject, 'Precalculus');
    assert.equal(r.level, 2);
    assert.match(r.solution ?? '', /boxed/);
    assert.equal(new Set(ds.data.map((x) => x.subject)).size, 7);
    assert.ok(ds.data.every((x) => x.level !== undefined && x.level >= 1 && x.level <= 5));
  });

  it('loads AIME 2024 with integer answers (leading zeros dropped, raw kept)', async () => {
    const ds = await loadDataset(`${DATA}/aime24/test.jsonl`);
    assert.equal(ds.kind, 'aime');
    assert.equal(ds.data.length, 30);
    const r = ds.data.find((x) => x.meta.rawAnswer === '025');
    assert.ok(r);
    assert.equal(r.answer, '25');
    assert.equal(r.id, '67');
    assert.ok(ds.data.every((x) => /^\d{1,3}$/.test(x.answer) && !/^0\d/.test(x.answer)));
  });

  it('streams a large file and stops early at the limit', async () => {
    const rows = [];
    for await (const r of streamDataset(`${DATA}/gsm8k/train.jsonl`, { limit: 3 })) rows.push(r);
    assert.equal(rows.length, 3);
    assert.deepEqual(
      rows.map((r) => r.source.line),
      [1, 2, 3],
    );
  });
});

describe('broken files', () => {
  it('a bad JSON line fails with file:line, or is skipped and counted', async () => {
    await assert.rejects(loadDataset(`${FX}/bad-json.jsonl`), (e: unknown) => {
      assert.ok(e instanceof DataFileError);
      assert.equal(e.line, 2);
      assert.match(e.message, /^test\/fixtures\/text\/bad-json\.jsonl:2: invalid JSON/);
      return true;
    });
    const ds = await loadDataset(`${FX}/bad-json.jsonl`, { onInvalid: 'skip' });
    assert.equal(ds.data.length, 2);
    assert.equal(ds.skipped, 1);
    assert.match(ds.errors[0] ?? '', /bad-json\.jsonl:2: invalid JSON/);
    assert.deepEqual(
      ds.data.map((r) => r.answer),
      ['2', '6'],
    );
  });

  it('a missing or mistyped field names the field and file:line', async () => {
    await assert.rejects(loadDataset(`${FX}/missing-field.jsonl`), /missing-field\.jsonl:2: missing field "answer"/);
    const ds = await loadDataset(`${FX}/missing-field.jsonl`, { onInvalid: 'skip' });
    assert.equal(ds.skipped, 2);
    assert.deepEqual(
      ds.data.map((r) => r.answer),
      ['1', '3'],
    );
    assert.match(ds.errors[1] ?? '', /missing-field\.jsonl:4: field "question" must be a string \(got array\)/);
  });

  it('an empty file (or only blank lines) is an error naming the file', async () => {
    await assert.rejects(loadDataset(`${FX}/empty.jsonl`), /empty\.jsonl: empty file/);
    await assert.rejects(loadDataset(`${FX}/blank.jsonl`, { onInvalid: 'skip' }), /blank\.jsonl: empty file/);
    await assert.rejects(loadDataset(`${FX}/no-such-file.jsonl`), /no-such-file\.jsonl: cannot read/);
  });

  it('GSM8K rows need a final #### number', async () => {
    await assert.rejects(
      loadDataset(`${FX}/gsm8k-broken.jsonl`),
      /gsm8k-broken\.jsonl:2: field "answer" has no final "#### <number>"/,
    );
    const ds = await loadDataset(`${FX}/gsm8k-broken.jsonl`, { onInvalid: 'skip' });
    assert.deepEqual(
      ds.data.map((r) => r.answer),
      ['5', '1203'],
    );
  });

  it('AIME answers must be integers 0-999', async () => {
    await assert.rejects(
      loadDataset(`${FX}/aime-broken.jsonl`),
      /aime-broken\.jsonl:2: field "answer" must be an integer 0-999/,
    );
    const ds = await loadDataset(`${FX}/aime-broken.jsonl`, { onInvalid: 'skip' });
    assert.deepEqual(
      ds.data.map((r) => [r.id, r.answer]),
      [
        ['1', '25'],
        ['3', '73'],
      ],
    );
  });

  it('MATH rows: BOM, CRLF and blank lines keep line numbers right; levels are checked', async () => {
    await assert.rejects(
      loadDataset(`${FX}/math-crlf.jsonl`),
      /math-crlf\.jsonl:3: field "level" must be 1-5 \(got "Level 9"\)/,
    );
    const ds = await loadDataset(`${FX}/math-crlf.jsonl`, { onInvalid: 'skip' });
    assert.deepEqual(
      ds.data.map((r) => [r.source.line, r.level, r.subject]),
      [
        [1, 3, 'Algebra'],
        [4, 2, 'Geometry'],
      ],
    );
    assert.equal(ds.data[0]?.answer, '\\frac{1}{2}');
  });

  it('generic rows use the given fields; non-objects are rejected', async () => {
    await assert.rejects(
      loadDataset(`${FX}/generic-odd.jsonl`, { questionField: 'q', answerField: 'a' }),
      /generic-odd\.jsonl:1: expected a JSON object/,
    );
    const ds = await loadDataset(`${FX}/generic-odd.jsonl`, {
      questionField: 'q',
      answerField: 'a',
      onInvalid: 'skip',
    });
    assert.equal(ds.kind, 'generic');
    assert.equal(ds.skipped, 2);
    assert.deepEqual(ds.data[0]?.question, 'custom');
    assert.deepEqual(ds.data[0]?.answer, '42');
    assert.deepEqual(ds.data[0]?.meta, { extra: true });
    await assert.rejects(
      loadDataset(`${FX}/generic-odd.jsonl`, { questionField: 'q', answerField: 'nope', onInvalid: 'skip' }),
      /no valid rows/,
    );
  });

  it('readJsonl yields errors instead of throwing on bad lines', async () => {
    const seen: string[] = [];
    for await (const e of readJsonl(`${FX}/bad-json.jsonl`)) seen.push(e.error ? `err@${e.line}` : `ok@${e.line}`);
    assert.deepEqual(seen, ['ok@1', 'err@2', 'ok@3']);
  });
});

describe('Parquet', () => {
  it('loads rows of several row groups like JSONL, with row numbers in errors', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'motif-pq-'));
    const file = path.join(dir, 'math-sample.parquet');
    const problems = Array.from({ length: 7 }, (_, i) => `Problem ${i} — ünïcødé ${'x'.repeat(i)}`);
    await writeFile(
      file,
      writeParquet(
        [
          { name: 'problem', type: 'string', values: problems },
          { name: 'answer', type: 'string', values: ['1', '\\frac{1}{2}', '3', '', '5', '6', '7'] },
          { name: 'level', type: 'int32', values: [1, 2, 3, 4, 5, 1, 2] },
          { name: 'year', type: 'int64', values: [2020, 2021, 2022, 2023, 2024, 2025, 2026] },
          {
            name: 'subject',
            type: 'string',
            values: ['Algebra', 'Algebra', 'Geometry', 'Algebra', 'Algebra', 'Algebra', 'Number Theory'],
          },
        ],
        3,
      ),
    );
    await assert.rejects(loadDataset(file), /math-sample\.parquet:4: field "answer" is empty/);
    const ds = await loadDataset(file, { onInvalid: 'skip' });
    assert.equal(ds.kind, 'math');
    assert.equal(ds.skipped, 1);
    assert.deepEqual(
      ds.data.map((r) => r.question),
      problems.filter((_, i) => i !== 3),
    );
    assert.equal(ds.data[1]?.answer, '\\frac{1}{2}');
    assert.equal(ds.data[5]?.subject, 'Number Theory');
    assert.equal(ds.data[5]?.source.line, 7);
    assert.equal(ds.data[2]?.level, 3);
    assert.equal(ds.data[2]?.meta.year, 2022); // INT64 arrives as BigInt; rows hold a number
    assert.doesNotThrow(() => JSON.stringify(ds.data));
  });

  it('reads compressed pages (gzip, brotli: hyparquet-compressors)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'motif-pqz-'));
    const questions = Array.from({ length: 50 }, (_, i) => `Question ${i}: what is ${i} + ${i}? ${'pad '.repeat(i)}`);
    const answers = questions.map((_, i) => String(2 * i));
    for (const codec of ['gzip', 'brotli'] as const) {
      const file = path.join(dir, `questions-${codec}.parquet`);
      const cols: Column[] = [
        { name: 'question', type: 'string', values: questions },
        { name: 'answer', type: 'string', values: answers },
      ];
      await writeFile(file, writeParquet(cols, 20, codec));
      const ds = await loadDataset(file);
      assert.equal(ds.kind, 'generic');
      assert.deepEqual(
        ds.data.map((r) => r.question),
        questions,
      );
      assert.deepEqual(
        ds.data.map((r) => r.answer),
        answers,
      );
    }
  });

  it('names the file when it is not Parquet', async () => {
    await assert.rejects(
      loadDataset(`${FX}/bad-json.jsonl`, { format: 'parquet' }),
      /bad-json\.jsonl: cannot read Parquet/,
    );
  });
});

describe('shuffle, limit, split', () => {
  it('mulberry32 is deterministic and uniform enough', () => {
    const a = createRng(42);
    const b = createRng(42);
    const xs = Array.from({ length: 1000 }, () => a());
    assert.deepEqual(
      xs,
      Array.from({ length: 1000 }, () => b()),
    );
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.05);
    assert.notDeepEqual(Array.from({ length: 5 }, createRng(1)), Array.from({ length: 5 }, createRng(2)));
  });

  it('shuffles a permutation, the same for the same seed', () => {
    const items = Array.from({ length: 100 }, (_, i) => i);
    const s1 = shuffle(items, 7);
    assert.deepEqual(s1, shuffle(items, 7));
    assert.notDeepEqual(s1, items);
    assert.notDeepEqual(s1, shuffle(items, 8));
    assert.deepEqual(
      [...s1].sort((x, y) => x - y),
      items,
    );
  });

  it('loadDataset shuffles then limits, deterministically', async () => {
    const a = await loadDataset(`${DATA}/math500/test.jsonl`, { shuffleSeed: 3, limit: 10 });
    const b = await loadDataset(`${DATA}/math500/test.jsonl`, { shuffleSeed: 3, limit: 10 });
    const plain = await loadDataset(`${DATA}/math500/test.jsonl`, { limit: 10 });
    assert.equal(a.data.length, 10);
    assert.deepEqual(
      a.data.map((r) => r.id),
      b.data.map((r) => r.id),
    );
    assert.notDeepEqual(
      a.data.map((r) => r.id),
      plain.data.map((r) => r.id),
    );
    assert.deepEqual(
      plain.data.map((r) => r.source.line),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
  });

  it('splits train/eval by count or fraction, disjoint and complete', () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const { train, eval: ev } = splitTrainEval(items, { evalSize: 10, seed: 1 });
    assert.equal(ev.length, 10);
    assert.equal(train.length, 40);
    assert.deepEqual(
      [...train, ...ev].sort((x, y) => x - y),
      items,
    );
    assert.deepEqual(
      ev,
      [...ev].sort((x, y) => x - y),
    ); // original order kept
    assert.deepEqual(splitTrainEval(items, { evalSize: 10, seed: 1 }).eval, ev);
    assert.equal(splitTrainEval(items, { evalFraction: 0.2 }).eval.length, 10);
    assert.throws(() => splitTrainEval(items, { evalSize: 51 }), /more than the 50 rows/);
    assert.throws(() => splitTrainEval(items, {}), /evalSize or evalFraction/);
  });

  it('guesses the kind from the path', () => {
    assert.equal(guessKind('data/gsm8k/train.jsonl'), 'gsm8k');
    assert.equal(guessKind('HuggingFaceH4/MATH-500/test.parquet'), 'math');
    assert.equal(guessKind('aime_2024/train.parquet'), 'aime');
    assert.equal(guessKind('my/questions.jsonl'), 'generic');
  });
});
