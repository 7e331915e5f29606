// report.html in a real browser (headless Chromium through playwright-core): every chart that has
// data is drawn by uPlot (a canvas of non-zero size holding pixels of each of its runs' colours),
// the page loads nothing but itself and logs no console or page error, the legend follows the
// cursor, and a run with no step renders without errors. A screenshot is saved as
// test-artifacts/report.png. Without Chromium the tests skip with the reason printed; with
// MOTIF_REQUIRE_BROWSER=1 (CI) a missing Chromium fails them.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { writeReport, writeRunReport } from '../../lib/report/writeReport.js';
import { closeSymbolic } from '../../lib/text/symbolic.js';
import { train } from '../../lib/train/trainer.js';
import { fakeModel, fakeRows, fastSettings } from '../helpers/fake-trainable.js';
import { findChromium, openLocalPage } from './chromium.js';

const chromiumPath = findChromium();
const required = process.env.MOTIF_REQUIRE_BROWSER === '1';
const skip = chromiumPath
  ? false
  : 'no Chromium found (install Debian\'s "chromium" or set MOTIF_CHROMIUM); MOTIF_REQUIRE_BROWSER=1 makes this fail';
if (skip) console.log(`# browser tests skipped: ${skip}`);

const ARTIFACTS = path.resolve('test-artifacts');
const TIMEOUT = 180_000;

let tmp: string;
let report: string;
let emptyReport: string;

before(async () => {
  if (skip) return;
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-report-browser-'));
  const rows = fakeRows(8);
  const quiet = { log: () => {} };
  const motif = path.join(tmp, 'motif');
  const grpo = path.join(tmp, 'grpo');
  await train(fakeModel(rows), { ...fastSettings(), ...quiet, steps: 6, dataset: rows, runDir: motif });
  await train(fakeModel(rows), { ...fastSettings(), ...quiet, steps: 6, method: 'grpo', dataset: rows, runDir: grpo });
  // A third run that logged a single step (one point per chart).
  const single = path.join(tmp, 'single-step');
  await mkdir(single);
  await writeFile(path.join(single, 'manifest.json'), JSON.stringify({ config: { method: 'grpo' } }));
  await writeFile(
    path.join(single, 'metrics.jsonl'),
    `${JSON.stringify({ step: 3, reward: { mean: 1.2 }, accuracy: 0.5, loss: 0.01, lr: 0.005 })}\n`,
  );
  report = (await writeReport([motif, grpo, single], path.join(tmp, 'report.html'))).out;
  const empty = path.join(tmp, 'no-steps');
  await mkdir(empty);
  await writeFile(path.join(empty, 'manifest.json'), JSON.stringify({ config: { method: 'motif', trajectories: 1 } }));
  emptyReport = (await writeRunReport(empty)).out;
});
after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
  await closeSymbolic();
});

/**
 * Per chart: whether it was drawn, its canvas size, and how many pixels are close to each run's
 * colour (for each line with a value that no later line of the chart hides by having the same points).
 */
interface ChartCheck {
  id: string;
  rendered: boolean;
  canvasWidth: number;
  canvasHeight: number;
  boxWidth: number;
  boxHeight: number;
  /** Run colours that should show on this chart (a series with a value) -> pixels found near that colour. */
  colorPixels: Record<string, number>;
}

// Runs in the page (plain JS text, so no tooling helper can leak into it): inspects every chart.
const INSPECT_CHARTS = `(() => {
  const data = JSON.parse(document.getElementById('motif-report-data').textContent);
  return data.charts.filter((c) => c.hasData).map((c) => {
    const fig = document.querySelector('figure[data-chart="' + c.id + '"]');
    const canvas = fig.querySelector('canvas');
    const box = canvas ? canvas.getBoundingClientRect() : { width: 0, height: 0 };
    const colorPixels = {};
    if (canvas && canvas.width > 0 && canvas.height > 0) {
      const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      c.series.forEach((s, i) => {
        if (!s.values.some((v) => v !== null)) return;
        // A line drawn over by a later one with the very same points cannot show.
        const key = JSON.stringify([s.steps, s.values]);
        if (c.series.slice(i + 1).some((t) => JSON.stringify([t.steps, t.values]) === key)) return;
        const hex = data.runs[s.run].color;
        const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
        let n = 0;
        for (let i = 0; i < px.length; i += 4)
          if (px[i + 3] > 200 && Math.abs(px[i] - rgb[0]) < 40 && Math.abs(px[i + 1] - rgb[1]) < 40 &&
              Math.abs(px[i + 2] - rgb[2]) < 40) n++;
        colorPixels[hex] = n;
      });
    }
    return { id: c.id, rendered: fig.getAttribute('data-rendered') === 'true',
      canvasWidth: canvas ? canvas.width : 0, canvasHeight: canvas ? canvas.height : 0,
      boxWidth: box.width, boxHeight: box.height, colorPixels };
  });
})()`;

describe('report.html in headless Chromium', { skip, timeout: TIMEOUT }, () => {
  it('draws every chart with data, logs no error, loads nothing else, and saves a screenshot', async () => {
    const opened = await openLocalPage(chromiumPath as string, report);
    try {
      const { page } = opened;
      const charts = (await page.evaluate(INSPECT_CHARTS)) as ChartCheck[];
      assert.ok(charts.length >= 12, `expected the full set of charts, got ${charts.length}`);
      for (const c of charts) {
        assert.ok(Object.keys(c.colorPixels).length > 0, `chart ${c.id}: some line is checked`);
        assert.ok(c.rendered, `chart ${c.id} was drawn`);
        assert.ok(
          c.canvasWidth > 100 && c.canvasHeight > 100,
          `chart ${c.id}: canvas ${c.canvasWidth}x${c.canvasHeight}`,
        );
        assert.ok(c.boxWidth > 100 && c.boxHeight > 100, `chart ${c.id}: shown at ${c.boxWidth}x${c.boxHeight}`);
        for (const [color, n] of Object.entries(c.colorPixels))
          assert.ok(n >= 10, `chart ${c.id}: the line of colour ${color} is drawn (${n} pixels)`);
      }
      // The run with one logged step shows up on the reward chart too.
      const reward = charts.find((c) => c.id === 'reward');
      assert.equal(Object.keys(reward?.colorPixels ?? {}).length, 3);
      // Charts without data say so instead of drawing.
      const undrawn = await page.$$eval('figure[data-has-data="false"]', (figs) =>
        figs.map((f) => [f.querySelector('canvas') === null, f.textContent?.includes('No values logged')]),
      );
      for (const [noCanvas, says] of undrawn) assert.ok(noCanvas && says);

      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'report.png'), fullPage: true });

      // The legend follows the cursor: hovering the reward chart shows numbers instead of '—'.
      const over = page.locator('figure[data-chart="reward"] .u-over');
      const box = await over.boundingBox();
      assert.ok(box);
      await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
      const values = await page.$$eval('figure[data-chart="reward"] .u-legend .u-value', (els) =>
        els.map((e) => e.textContent ?? ''),
      );
      assert.ok(
        values.some((v) => /^-?\d/.test(v)),
        `legend values after hovering: ${JSON.stringify(values)}`,
      );

      assert.deepEqual(opened.problems, []);
      assert.deepEqual(
        opened.requests.filter((u) => !u.startsWith('file://')),
        [],
        'the page requests nothing from the network',
      );
      assert.equal(opened.requests.length, 1, `only the page itself is loaded: ${opened.requests.join(', ')}`);
    } finally {
      await opened.close();
    }
  });

  it('renders a run with no logged step without errors', async () => {
    const opened = await openLocalPage(chromiumPath as string, emptyReport);
    try {
      const { page } = opened;
      assert.equal(await page.locator('canvas').count(), 0);
      assert.ok((await page.locator('figure[data-chart]').count()) >= 10);
      assert.match((await page.textContent('body')) ?? '', /No values logged/);
      assert.deepEqual(opened.problems, []);
    } finally {
      await opened.close();
    }
  });
});

describe('browser test setup', () => {
  it('finds Chromium when MOTIF_REQUIRE_BROWSER=1', { skip: !required && 'MOTIF_REQUIRE_BROWSER is not 1' }, () => {
    assert.ok(
      chromiumPath,
      'MOTIF_REQUIRE_BROWSER=1 but no Chromium was found: install Debian\'s "chromium" (.ci/run does) or set MOTIF_CHROMIUM',
    );
  });
});
