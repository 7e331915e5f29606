/**
 * ReportCommand.ts — `motif-native report RUN_DIR [RUN_DIR…] [--out FILE]`: one self-contained
 * report.html (lib/report) with the runs' charts overlaid, their config side by side and a few
 * sample trajectories. Default output: RUN_DIR/report.html for one run, ./report.html for several.
 */
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { REPORT_FILE, writeReport } from '../../report/writeReport.js';
import { shownPath } from '../progress-line.js';

interface ReportArgs {
  runDirs: string[];
  out?: string;
}

/** Where the report goes when --out is not given. */
export function defaultReportPath(runDirs: readonly string[]): string {
  return runDirs.length === 1 ? path.join(runDirs[0], REPORT_FILE) : path.resolve(REPORT_FILE);
}

/** The `report` yargs command (register with `.command(reportCommand)` in cli.ts). */
export const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report <runDirs..>',
  describe: 'Write one HTML page (opens offline) charting one or more training runs, overlaid for comparison',
  builder: (y) =>
    y
      .positional('runDirs', {
        type: 'string',
        array: true,
        demandOption: true,
        describe: 'Run folders written by `train` (manifest.json + metrics.jsonl)',
      })
      .option('out', {
        type: 'string',
        describe: 'Output HTML file (default: RUN_DIR/report.html for one run, ./report.html for several)',
      })
      .example('$0 report runs/gsm8k', 'writes runs/gsm8k/report.html')
      .example('$0 report runs/grpo runs/motif --out compare.html', 'two runs on the same charts'),
  handler: async (argv) => {
    const runDirs = argv.runDirs.map(String);
    const r = await writeReport(runDirs, argv.out ?? defaultReportPath(runDirs));
    console.log(
      `wrote ${shownPath(r.out)}: ${r.runs} run${r.runs === 1 ? '' : 's'}, ${r.steps} step${r.steps === 1 ? '' : 's'}, ` +
        `${(r.bytes / 1024).toFixed(0)} KiB`,
    );
  },
};
