/**
 * progress-line.ts — a throttled one-line progress display for the CLI's long file jobs (export-gguf,
 * merge): on a TTY one line on stderr redrawn in place at most ten times a second; elsewhere (logs,
 * pipes) a plain line at each quarter. `quiet` turns it off.
 */
import path from 'node:path';

/** A progress line: `update(done, total, detail)` as work advances, `done()` at the end. */
export interface ProgressLine {
  update: (done: number, total: number, detail: string) => void;
  done: () => void;
}

/** Creates a progress line whose lines start with `label:`. */
export function progressLine(label: string, quiet: boolean, stream = process.stderr): ProgressLine {
  const tty = stream.isTTY === true;
  let last = 0;
  let lastQuarter = 0;
  let drawn = false;
  return {
    update: (done, total, detail) => {
      if (quiet) return;
      const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
      if (tty) {
        const now = Date.now();
        if (now - last < 100 && done < total) return;
        last = now;
        const cols = (stream.columns || 100) - 1;
        stream.write(
          `\r${`${label}: ${String(pct).padStart(3)}%  ${detail}`.slice(0, cols).padEnd(Math.min(99, cols))}`,
        );
        drawn = true;
      } else if (Math.floor(pct / 25) > lastQuarter) {
        lastQuarter = Math.floor(pct / 25);
        stream.write(`${label}: ${pct}% (${detail})\n`);
      }
    },
    done: () => {
      if (drawn) stream.write('\n');
      drawn = false;
    },
  };
}

/** Bytes as `12.3 MiB` (one decimal under 10 MiB). */
export function mebibytes(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MiB`;
}

/** A path relative to the working folder when it lies under it, else absolute. */
export function shownPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}
