// Dataset loaders: GSM8K (question + solution ending in `#### N`), MATH / MATH-500
// (problem, answer, solution, subject, level), AIME (problem, integer answer 0–999, leading
// zeros allowed) and generic rows with configurable question/answer fields, from JSONL
// (streamed) or Parquet (row group by row group, hyparquet) into one row type. Bad rows are
// reported with file:line and either skipped (counted) or fail the load.

import path from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';

import { DataFileError, readJsonl } from './jsonl.js';
import { shuffle } from './random.js';

/** One dataset row in the common shape every loader returns. */
export interface DatasetRow {
  /** Stable id: the row's own id field when it has one, else `<file stem>:<line>`. */
  id: string;
  /** The problem text given to the model. */
  question: string;
  /** The reference final answer (GSM8K: the number after `####`, commas removed; AIME: the integer without leading zeros). */
  answer: string;
  /** A worked solution, when the dataset has one. */
  solution?: string;
  /** MATH subject. */
  subject?: string;
  /** MATH difficulty level 1–5. */
  level?: number;
  /** Where the row came from: the file and its 1-based line (JSONL) or row (Parquet). */
  source: { file: string; line: number };
  /** The row's other fields, as read (and the raw answer where it was rewritten). */
  meta: Record<string, unknown>;
}

/** Which layout the rows have. `math500` is an alias of `math`. */
export type DatasetKind = 'gsm8k' | 'math' | 'math500' | 'aime' | 'generic';

/** Options of {@link loadDataset} and {@link streamDataset}. */
export interface DatasetOptions {
  /** Row layout; default guessed from the path (gsm8k, math/prm800k, aime), else `generic`. */
  kind?: DatasetKind;
  /** Container; default from the extension (`.parquet` → parquet, else JSONL). */
  format?: 'jsonl' | 'parquet';
  /** Field holding the question (default: `question` for gsm8k/generic, `problem` for math/aime). */
  questionField?: string;
  /** Field holding the answer (default `answer`). */
  answerField?: string;
  /** Field holding a row id (default: `unique_id` for math, `id` otherwise). */
  idField?: string;
  /** What to do with a row that fails validation: `fail` (default) throws, `skip` counts it and goes on. */
  onInvalid?: 'fail' | 'skip';
  /** Shuffle the rows with this seed (a number) before `limit`; default: keep file order. */
  shuffleSeed?: number;
  /** Keep at most this many rows (after shuffling). */
  limit?: number;
}

/** Running counts of a load; {@link streamDataset} fills one in as it goes. */
export interface DatasetStats {
  /** Rows returned. */
  rows: number;
  /** Rows skipped as invalid (`onInvalid: 'skip'`). */
  skipped: number;
  /** Messages of the first skipped rows (up to 20), each starting with `file:line:`. */
  errors: string[];
}

/** What {@link loadDataset} returns. */
export interface LoadedDataset extends DatasetStats {
  /** The file that was read. */
  file: string;
  /** The kind it was read as. */
  kind: Exclude<DatasetKind, 'math500'>;
  /** The rows. */
  data: DatasetRow[];
}

type Kind = Exclude<DatasetKind, 'math500'>;

/** Guesses the dataset kind from a file path. */
export function guessKind(file: string): Kind {
  const p = file.toLowerCase();
  if (p.includes('gsm8k') || p.includes('grade_school_math') || p.includes('grade-school-math')) return 'gsm8k';
  if (p.includes('aime')) return 'aime';
  if (/math[-_]?500|prm800k|(^|[/\\_-])math([/\\_.-]|$)|competition_math|hendrycks/.test(p)) return 'math';
  return 'generic';
}

interface Fields {
  question: string;
  answer: string;
  id: string;
}

function fieldsFor(kind: Kind, o: DatasetOptions): Fields {
  const dq = kind === 'math' || kind === 'aime' ? 'problem' : 'question';
  const di = kind === 'math' ? 'unique_id' : 'id';
  return { question: o.questionField ?? dq, answer: o.answerField ?? 'answer', id: o.idField ?? di };
}

/** Thrown-or-counted validation failure of one row. */
class RowError extends Error {}

function str(v: unknown, field: string, { allowNumber = false } = {}): string {
  if (v === undefined || v === null) throw new RowError(`missing field "${field}"`);
  if (typeof v === 'string') return v;
  if (allowNumber && (typeof v === 'number' || typeof v === 'bigint')) return String(v);
  throw new RowError(
    `field "${field}" must be a string${allowNumber ? ' or a number' : ''} (got ${Array.isArray(v) ? 'array' : typeof v})`,
  );
}

/** The number after GSM8K's last `####`, commas removed, or null. */
export function parseGsm8kAnswer(solution: string): string | null {
  const k = solution.lastIndexOf('####');
  if (k < 0) return null;
  const tail = solution
    .slice(k + 4)
    .trim()
    .replace(/^\$/, '')
    .replace(/,/g, '');
  return /^-?\d+(?:\.\d+)?$/.test(tail) ? tail : null;
}

function toRow(value: unknown, kind: Kind, f: Fields, file: string, line: number): DatasetRow {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new RowError('expected a JSON object');
  const obj = value as Record<string, unknown>;
  const question = str(obj[f.question], f.question);
  if (question.trim().length === 0) throw new RowError(`field "${f.question}" is empty`);
  const rawAnswer = str(obj[f.answer], f.answer, { allowNumber: kind !== 'gsm8k' });
  const idValue = obj[f.id];
  const id =
    typeof idValue === 'string' || typeof idValue === 'number' || typeof idValue === 'bigint'
      ? String(idValue)
      : `${path.basename(file).replace(/\.[^.]*$/, '')}:${line}`;
  const meta: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === f.question || k === f.answer) continue;
    // Parquet INT64 columns arrive as BigInt, which JSON cannot hold: make them numbers when exact.
    meta[k] = typeof v === 'bigint' ? (Number.isSafeInteger(Number(v)) ? Number(v) : String(v)) : v;
  }
  const row: DatasetRow = { id, question, answer: rawAnswer.trim(), source: { file, line }, meta };
  if (kind === 'gsm8k') {
    const n = parseGsm8kAnswer(rawAnswer);
    if (n === null) throw new RowError(`field "${f.answer}" has no final "#### <number>"`);
    row.answer = n;
    row.solution = rawAnswer;
  } else if (kind === 'aime') {
    const t = rawAnswer.trim();
    if (!/^\d{1,3}$/.test(t))
      throw new RowError(`field "${f.answer}" must be an integer 0-999 (got ${JSON.stringify(rawAnswer)})`);
    row.answer = String(Number.parseInt(t, 10));
    if (row.answer !== t) meta.rawAnswer = rawAnswer;
    if (typeof obj.solution === 'string') row.solution = obj.solution;
  } else if (kind === 'math') {
    if (row.answer.length === 0) throw new RowError(`field "${f.answer}" is empty`);
    if (typeof obj.solution === 'string') row.solution = obj.solution;
    if (typeof obj.subject === 'string') row.subject = obj.subject;
    else if (typeof obj.type === 'string') row.subject = obj.type;
    const lv = obj.level;
    if (lv !== undefined && lv !== null) {
      const n =
        typeof lv === 'number'
          ? lv
          : typeof lv === 'string'
            ? Number(/^(?:Level\s*)?(\d+)$/i.exec(lv.trim())?.[1])
            : Number.NaN;
      if (!Number.isInteger(n) || n < 1 || n > 5)
        throw new RowError(`field "level" must be 1-5 (got ${JSON.stringify(lv)})`);
      row.level = n;
    }
  } else if (row.answer.length === 0) {
    throw new RowError(`field "${f.answer}" is empty`);
  }
  return row;
}

async function* rawRows(
  file: string,
  format: 'jsonl' | 'parquet',
): AsyncGenerator<{ line: number; value?: unknown; error?: DataFileError }> {
  if (format === 'jsonl') {
    yield* readJsonl(file);
    return;
  }
  let buffer: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
  } catch (err) {
    throw new DataFileError(file, 0, `cannot read Parquet: ${(err as Error).message}`);
  }
  let start = 0;
  for (const group of metadata.row_groups) {
    const n = Number(group.num_rows);
    let objects: Record<string, unknown>[];
    try {
      objects = await parquetReadObjects({ file: buffer, metadata, rowStart: start, rowEnd: start + n, compressors });
    } catch (err) {
      throw new DataFileError(
        file,
        start + 1,
        `cannot read Parquet rows ${start + 1}-${start + n}: ${(err as Error).message}`,
      );
    }
    for (let i = 0; i < objects.length; i++) yield { line: start + i + 1, value: objects[i] };
    start += n;
  }
}

function resolveKind(file: string, options: DatasetOptions): Kind {
  const k = options.kind ?? guessKind(file);
  if (k === 'math500') return 'math';
  if (!['gsm8k', 'math', 'aime', 'generic'].includes(k)) throw new RangeError(`unknown dataset kind '${String(k)}'`);
  return k as Kind;
}

/**
 * Streams the rows of a dataset file (JSONL line by line, Parquet row group by row group).
 * Invalid rows throw a {@link DataFileError} naming `file:line`, or with `onInvalid: 'skip'`
 * are counted in `stats`. `shuffleSeed` is ignored here (shuffling needs all rows: use
 * {@link loadDataset}); `limit` stops the stream early.
 */
export async function* streamDataset(
  file: string,
  options: DatasetOptions = {},
  stats?: DatasetStats,
): AsyncGenerator<DatasetRow> {
  const kind = resolveKind(file, options);
  const format = options.format ?? (/\.parquet$/i.test(file) ? 'parquet' : 'jsonl');
  const fields = fieldsFor(kind, options);
  const skip = (options.onInvalid ?? 'fail') === 'skip';
  const st = stats ?? { rows: 0, skipped: 0, errors: [] };
  const limit = options.limit ?? Infinity;
  let seen = 0;
  if (st.rows >= limit) return;
  for await (const entry of rawRows(file, format)) {
    seen++;
    let err: DataFileError | undefined = entry.error;
    let row: DatasetRow | undefined;
    if (!err) {
      try {
        row = toRow(entry.value, kind, fields, file, entry.line);
      } catch (e) {
        if (!(e instanceof RowError)) throw e;
        err = new DataFileError(file, entry.line, e.message);
      }
    }
    if (err) {
      if (!skip) throw err;
      st.skipped++;
      if (st.errors.length < 20) st.errors.push(err.message);
      continue;
    }
    st.rows++;
    yield row as DatasetRow;
    if (st.rows >= limit) return;
  }
  if (seen === 0) throw new DataFileError(file, 0, 'empty file: no rows');
  if (st.rows === 0) {
    throw new DataFileError(file, 0, `no valid rows (${st.skipped} skipped; first: ${st.errors[0] ?? 'none'})`);
  }
}

/**
 * Loads a dataset file into memory: validates every row (see {@link streamDataset}), then
 * shuffles with `shuffleSeed` when given, then keeps the first `limit` rows.
 *
 * @example
 * const { data, skipped } = await loadDataset('../shared/data/math500/test.jsonl', { shuffleSeed: 1, limit: 100 });
 */
export async function loadDataset(file: string, options: DatasetOptions = {}): Promise<LoadedDataset> {
  const kind = resolveKind(file, options);
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 0)) {
    throw new RangeError(`loadDataset: limit must be a non-negative integer, got ${options.limit}`);
  }
  const stats: DatasetStats = { rows: 0, skipped: 0, errors: [] };
  const streamOptions = options.shuffleSeed === undefined ? options : { ...options, limit: undefined };
  let data: DatasetRow[] = [];
  for await (const row of streamDataset(file, { ...streamOptions, kind }, stats)) data.push(row);
  if (options.shuffleSeed !== undefined) data = shuffle(data, options.shuffleSeed);
  if (options.limit !== undefined && data.length > options.limit) data = data.slice(0, options.limit);
  return { file, kind, data, rows: data.length, skipped: stats.skipped, errors: stats.errors };
}
