// JSONL reading: streams a file line by line (large files never sit in memory whole) and
// yields each parsed object with its 1-based line number; errors name `file:line`.

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

/** An error about one place in a data file; the message starts with `file:line:`. */
export class DataFileError extends Error {
  /** The file. */
  readonly file: string;
  /** 1-based line (JSONL) or row (Parquet) number; 0 when it is about the whole file. */
  readonly line: number;

  constructor(file: string, line: number, message: string) {
    super(line > 0 ? `${file}:${line}: ${message}` : `${file}: ${message}`);
    this.name = 'DataFileError';
    this.file = file;
    this.line = line;
  }
}

/** One line of a JSONL file: its parsed value, or the error that made it unreadable. */
export type JsonlEntry =
  | { line: number; value: unknown; error?: undefined }
  | { line: number; value?: undefined; error: DataFileError };

/**
 * Streams a JSONL file. Blank lines are skipped; a UTF-8 BOM and `\r\n` endings are
 * accepted. A line that is not valid JSON is yielded as `{ line, error }` (not thrown), so the
 * caller decides whether to skip it or fail. A missing file rejects with a {@link DataFileError}.
 */
export async function* readJsonl(file: string): AsyncGenerator<JsonlEntry> {
  const stream = createReadStream(file, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  try {
    await opened;
  } catch (err) {
    throw new DataFileError(file, 0, `cannot read: ${(err as Error).message}`);
  }
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const raw of lines) {
      line++;
      const text = line === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (text.trim().length === 0) continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        yield { line, error: new DataFileError(file, line, `invalid JSON: ${(err as Error).message}`) };
        continue;
      }
      yield { line, value };
    }
  } finally {
    lines.close();
    stream.destroy();
  }
}
