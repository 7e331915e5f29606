/**
 * writeReport.ts — writes report.html for one or more training run folders: reads each run
 * (read-run.ts), derives the charts, config table and samples (report-data.ts), renders one
 * self-contained page (html.ts) and writes it atomically (temporary file + rename).
 *
 * `writeRunReport(runDir)` is the trainer's end-of-run call: RUN_DIR/report.html, accepting a run
 * that stopped before its first step.
 */
import path from 'node:path';
import { invalidParameterError } from '../native/errors.js';
import { writeFileAtomic } from '../train/run-dir.js';
import { renderReportHtml } from './html.js';
import { type ReadRunOptions, readRun } from './read-run.js';
import { buildReportData } from './report-data.js';

/** The report file a run folder gets by default. */
export const REPORT_FILE = 'report.html';

/** Options of writeReport. */
export interface WriteReportOptions extends ReadRunOptions {
  /** The time written into the page (default: now). */
  generatedAt?: Date;
}

/** What writeReport wrote. */
export interface WriteReportResult {
  /** Absolute path of the page. */
  out: string;
  /** Number of runs on the page. */
  runs: number;
  /** Logged steps over all runs. */
  steps: number;
  /** Size of the page in bytes. */
  bytes: number;
}

/**
 * Writes one self-contained HTML report (charts per step, config summary, sample trajectories) of
 * the run folders `runDirs`, overlaid on the same charts, to `outFile`. Throws a MotifError for a
 * folder that is not a run, a missing or empty metrics.jsonl (unless `allowNoSteps`), or a damaged
 * log line (file:line named).
 */
export async function writeReport(
  runDirs: readonly string[],
  outFile: string,
  options: WriteReportOptions = {},
): Promise<WriteReportResult> {
  if (!Array.isArray(runDirs) || runDirs.length === 0)
    throw invalidParameterError('runDirs', 'at least one run folder', runDirs);
  if (typeof outFile !== 'string' || outFile === '') throw invalidParameterError('outFile', 'a file path', outFile);
  const records = [];
  for (const dir of runDirs) records.push(await readRun(dir, options));
  const data = buildReportData(records);
  const raw = records.map((r) => ({
    dir: r.dir,
    manifest: r.manifest,
    ...(r.summary ? { summary: r.summary } : {}),
    metrics: r.steps,
  }));
  const html = renderReportHtml(data, raw, { generatedAt: options.generatedAt });
  const out = path.resolve(outFile);
  await writeFileAtomic(out, html);
  return {
    out,
    runs: records.length,
    steps: records.reduce((a, r) => a + r.steps.length, 0),
    bytes: Buffer.byteLength(html),
  };
}

/** Writes RUN_DIR/report.html for one run; a run with no logged step still gets a page. */
export async function writeRunReport(runDir: string): Promise<WriteReportResult> {
  return writeReport([runDir], path.join(runDir, REPORT_FILE), { allowNoSteps: true });
}
