/**
 * index.ts — training reports: one self-contained report.html with charts per step, the config and
 * sample trajectories of one or more run folders.
 */

export { escapeHtml, jsonForScript } from './html.js';
export { type ReadRunOptions, type RunRecord, readRun, SUMMARY } from './read-run.js';
export { type ChartSeries, type ChartSpec, type ReportData, RUN_COLORS } from './report-data.js';
export {
  REPORT_FILE,
  type WriteReportOptions,
  type WriteReportResult,
  writeReport,
  writeRunReport,
} from './writeReport.js';
