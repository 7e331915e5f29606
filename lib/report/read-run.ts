/**
 * read-run.ts — reads what a report shows from a training run folder (lib/train/run-dir.ts):
 * manifest.json (the config), metrics.jsonl (one object per step), samples.jsonl (trajectories,
 * optional) and summary.json (optional). Each log line is checked: a line that is not a JSON object
 * with a numeric `step` is a MotifError naming file:line. The one exception is a last line with no
 * closing newline that does not parse: a write torn by a killed (or still running) trainer; it is
 * left out and noted in `warnings`.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { MotifError } from '../native/errors.js';
import { MANIFEST, METRICS, SAMPLES } from '../train/run-dir.js';

/** The optional end-of-run summary (the built-in demo writes it). */
export const SUMMARY = 'summary.json';

/** A run folder as read for a report. */
export interface RunRecord {
  /** Absolute path of the run folder. */
  dir: string;
  /** manifest.json as parsed. */
  manifest: Record<string, unknown>;
  /** summary.json as parsed, when the run has one. */
  summary?: Record<string, unknown>;
  /** metrics.jsonl, one object per logged step, in file order. */
  steps: Record<string, unknown>[];
  /** samples.jsonl (empty when the run has none). */
  samples: Record<string, unknown>[];
  /** Things the reader noticed and left out (a torn last line). */
  warnings: string[];
}

/** Options of readRun. */
export interface ReadRunOptions {
  /**
   * Accept a run with no logged step (metrics.jsonl missing or empty), as at the end of a run that
   * stopped before its first step. Default false: the report command refuses such a folder.
   */
  allowNoSteps?: boolean;
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new MotifError('ERR_MOTIF_IO', `${file}: cannot read (${code ?? err})`, { cause: err });
  }
}

/** A JSON object file (manifest.json, summary.json). */
function parseObjectFile(text: string, file: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new MotifError('ERR_MOTIF_FORMAT', `${file}: not valid JSON (${(err as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new MotifError('ERR_MOTIF_FORMAT', `${file}: expected a JSON object`);
  return value as Record<string, unknown>;
}

/**
 * Parses a JSONL log of step objects. Every non-blank line must be a JSON object with a finite
 * numeric `step`, except a torn last line (no closing newline), which is dropped with a warning.
 */
export function parseStepLog(text: string, file: string, warnings: string[]): Record<string, unknown>[] {
  const lines = text.split('\n');
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    const where = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      // Only the very last line can lack its newline; it is then a write cut short.
      if (i === lines.length - 1) {
        warnings.push(`${where}: an incomplete last line (a torn write) was left out`);
        continue;
      }
      throw new MotifError('ERR_MOTIF_FORMAT', `${where}: not a JSON line (${(err as Error).message})`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw new MotifError('ERR_MOTIF_FORMAT', `${where}: expected a JSON object, one per line`);
    const step = (value as Record<string, unknown>).step;
    if (typeof step !== 'number' || !Number.isFinite(step))
      throw new MotifError('ERR_MOTIF_FORMAT', `${where}: expected a number in "step"`);
    out.push(value as Record<string, unknown>);
  }
  return out;
}

/** Reads a run folder for a report (see the file comment for what is checked). */
export async function readRun(runDir: string, options: ReadRunOptions = {}): Promise<RunRecord> {
  const dir = path.resolve(runDir);
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory())
    throw new MotifError('ERR_MOTIF_IO', `${dir}: no such folder (expected a training run folder)`);

  const manifestFile = path.join(dir, MANIFEST);
  const manifestText = await readText(manifestFile);
  if (manifestText === undefined)
    throw new MotifError('ERR_MOTIF_FORMAT', `${manifestFile}: missing; ${dir} is not a motif-native run folder`);
  const manifest = parseObjectFile(manifestText, manifestFile);

  const warnings: string[] = [];
  const metricsFile = path.join(dir, METRICS);
  const metricsText = await readText(metricsFile);
  if (!options.allowNoSteps) {
    if (metricsText === undefined)
      throw new MotifError('ERR_MOTIF_FORMAT', `${metricsFile}: missing; the run has logged no step yet`);
    if (metricsText.trim() === '')
      throw new MotifError('ERR_MOTIF_FORMAT', `${metricsFile}: empty; the run has logged no step yet`);
  }
  const steps = parseStepLog(metricsText ?? '', metricsFile, warnings);
  if (steps.length === 0 && !options.allowNoSteps)
    throw new MotifError('ERR_MOTIF_FORMAT', `${metricsFile}: holds no complete step`);

  const samplesFile = path.join(dir, SAMPLES);
  const samples = parseStepLog((await readText(samplesFile)) ?? '', samplesFile, warnings);

  const summaryFile = path.join(dir, SUMMARY);
  const summaryText = await readText(summaryFile);
  const record: RunRecord = { dir, manifest, steps, samples, warnings };
  if (summaryText !== undefined) record.summary = parseObjectFile(summaryText, summaryFile);
  return record;
}
