/**
 * screenshot-report.ts — renders the report of one or more run folders and saves a screenshot of its
 * top (the README's docs/report.png), through the same headless Chromium as the browser tests:
 *
 *   node --import tsx test/browser/screenshot-report.ts RUN_DIR [RUN_DIR…] --out docs/report.png
 *        [--width 1280] [--height 1000]
 *
 * Fails when the page logs an error. The report itself is written to a temporary folder.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeReport } from '../../lib/report/writeReport.js';
import { findChromium, openLocalPage } from './chromium.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: 'string', default: 'docs/report.png' },
    width: { type: 'string', default: '1280' },
    height: { type: 'string', default: '1000' },
  },
});
const chromiumPath = findChromium();
if (positionals.length === 0 || !chromiumPath) {
  console.error(
    positionals.length === 0 ? 'usage: screenshot-report.ts RUN_DIR [RUN_DIR…] --out FILE.png' : 'no Chromium found',
  );
  process.exit(2);
}
const tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-report-shot-'));
try {
  const { out } = await writeReport(positionals, path.join(tmp, 'report.html'));
  const opened = await openLocalPage(chromiumPath, out, { width: Number(values.width), height: Number(values.height) });
  try {
    await opened.page.screenshot({ path: values.out });
    if (opened.problems.length) throw new Error(`the page reported: ${opened.problems.join('; ')}`);
  } finally {
    await opened.close();
  }
  console.log(`wrote ${values.out}`);
} finally {
  await rm(tmp, { recursive: true, force: true });
}
