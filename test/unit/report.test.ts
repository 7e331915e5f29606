// report.html (lib/report) without a browser: every logged step is embedded as JSON and the chart
// series carry the logged values (checked against hand-written logs and against metrics.jsonl read
// here line by line); uPlot is inlined and nothing is loaded from elsewhere; text from the logs
// cannot close the page's elements (escaping); several runs share the charts with a column each in
// the config table; bad folders and damaged logs give MotifErrors naming file:line; a run with no
// step still renders through writeRunReport; the page is written atomically; the `report` command.
// The browser half (charts drawn, no console errors) is test/browser/report.test.ts.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { defaultReportPath } from '../../lib/cli/commands/ReportCommand.js';
import { MotifError } from '../../lib/native/errors.js';
import { escapeHtml, jsonForScript } from '../../lib/report/html.js';
import { writeReport, writeRunReport } from '../../lib/report/writeReport.js';
import { closeSymbolic } from '../../lib/text/symbolic.js';
import { train } from '../../lib/train/trainer.js';
import { fakeModel, fakeRows, fastSettings } from '../helpers/fake-trainable.js';

let tmp: string;
let motifRun: string;
let grpoRun: string;
const rows = fakeRows(8);

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-report-'));
  motifRun = path.join(tmp, 'motif-k2');
  grpoRun = path.join(tmp, 'grpo-base');
  const quiet = { log: () => {} };
  await train(fakeModel(rows), { ...fastSettings(), ...quiet, dataset: rows, runDir: motifRun });
  await train(fakeModel(rows), { ...fastSettings(), ...quiet, method: 'grpo', dataset: rows, runDir: grpoRun });
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
  await closeSymbolic();
});

interface Embedded {
  runs: { label: string; color: string; dir: string; stepsLogged: number }[];
  charts: {
    id: string;
    hasData: boolean;
    series: { run: number; label: string; dashed: boolean; steps: number[]; values: (number | null)[] }[];
  }[];
  raw: { dir: string; manifest: Record<string, unknown>; metrics: Record<string, unknown>[] }[];
}

/** The JSON embedded in the page, parsed (found by its element, independently of the writer). */
function embedded(html: string): Embedded {
  const m = /<script id="motif-report-data" type="application\/json">([^<]*)<\/script>/.exec(html);
  assert.ok(m, 'the page embeds its data in <script id="motif-report-data">');
  return JSON.parse(m[1]) as Embedded;
}

async function jsonLines(file: string): Promise<Record<string, unknown>[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A hand-made run folder: a manifest and, when given, metrics/samples text written as is. */
async function handRun(
  name: string,
  files: { manifest?: unknown; metrics?: string; samples?: string; summary?: unknown },
): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir, { recursive: true });
  const manifest = files.manifest ?? { format: 'motif-native-run', config: { method: 'motif', trajectories: 2 } };
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
  if (files.metrics !== undefined) await writeFile(path.join(dir, 'metrics.jsonl'), files.metrics);
  if (files.samples !== undefined) await writeFile(path.join(dir, 'samples.jsonl'), files.samples);
  if (files.summary !== undefined) await writeFile(path.join(dir, 'summary.json'), JSON.stringify(files.summary));
  return dir;
}

const metricLine = (o: Record<string, unknown>) => `${JSON.stringify(o)}\n`;

async function rejectsWith(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof MotifError, `a MotifError, got ${err}`);
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('report of a trained run', () => {
  it('embeds every logged step and charts the logged values', async () => {
    const out = path.join(tmp, 'one.html');
    const r = await writeReport([motifRun], out);
    assert.equal(r.runs, 1);
    assert.equal(r.steps, 4);
    const html = await readFile(out, 'utf8');
    const data = embedded(html);
    const logged = await jsonLines(path.join(motifRun, 'metrics.jsonl'));
    assert.equal(logged.length, 4);
    assert.deepEqual(data.raw[0].metrics, logged);
    const manifest = JSON.parse(await readFile(path.join(motifRun, 'manifest.json'), 'utf8'));
    assert.deepEqual(data.raw[0].manifest, manifest);

    const byId = new Map(data.charts.map((c) => [c.id, c]));
    const values = (id: string) => byId.get(id)?.series[0].values;
    assert.deepEqual(byId.get('reward')?.series[0].steps, [1, 2, 3, 4]);
    assert.deepEqual(
      values('reward'),
      logged.map((m) => (m.reward as { mean: number }).mean),
    );
    assert.deepEqual(
      values('accuracy'),
      logged.map((m) => m.accuracy),
    );
    assert.deepEqual(
      values('tokens-per-second'),
      logged.map((m) => (m.timing as { tokensPerSecond: number }).tokensPerSecond),
    );
    // One chart per reward component of the manifest.
    for (const { name } of manifest.rewards as { name: string }[]) {
      const chart = byId.get(`reward-${name}`);
      assert.ok(chart, `a chart for the reward component ${name}`);
      assert.deepEqual(
        chart.series[0].values,
        logged.map((m) => (m.rewards as Record<string, { mean: number }>)[name].mean),
      );
    }
    for (const id of ['kl', 'clip-fraction', 'completion-length', 'loss', 'grad-norm', 'lr'])
      assert.ok(byId.get(id)?.hasData, `chart ${id} has data`);
    // MOTIF logs later-round lengths: a second, dashed line of the same run.
    const lengths = byId.get('completion-length')?.series ?? [];
    assert.deepEqual(
      lengths.map((s) => s.dashed),
      [false, true],
    );
    // Every chart has a figure on the page.
    for (const c of data.charts) assert.ok(html.includes(`data-chart="${c.id}"`), `figure for ${c.id}`);
  });

  it('inlines uPlot and loads nothing from elsewhere', async () => {
    const out = path.join(tmp, 'inline.html');
    await writeReport([motifRun], out);
    const html = await readFile(out, 'utf8');
    const uplot = await readFile(path.join('node_modules', 'uplot', 'dist', 'uPlot.iife.min.js'), 'utf8');
    assert.ok(html.includes(uplot.trim()), "uPlot's minified script is in the page");
    assert.match(html, /Copyright \(c\) \d{4} Leon Sorokin/, "uPlot's MIT notice is kept");
    assert.doesNotMatch(html, /<script[^>]*\ssrc=/i);
    assert.doesNotMatch(html, /<link\b/i);
    assert.doesNotMatch(html, /\b(src|href)\s*=\s*["']?(https?:)?\/\//i);
    assert.doesNotMatch(html, /@import|url\(\s*["']?https?:/i);
  });

  it('shows a few sample trajectories from the first and last step', async () => {
    const html = await readFile((await writeReport([motifRun], path.join(tmp, 's.html'))).out, 'utf8');
    const samples = await jsonLines(path.join(motifRun, 'samples.jsonl'));
    const first = samples[0];
    const last = samples[samples.length - 1];
    assert.notEqual(first.step, last.step);
    assert.ok(html.includes(escapeHtml(first.question as string)));
    assert.ok(html.includes(`<b>Step ${first.step}</b>`));
    assert.ok(html.includes(`<b>Step ${last.step}</b>`));
    const lastRound = (last.trajectories as string[][])[0].at(-1) as string;
    assert.ok(html.includes(escapeHtml(lastRound)), "the last sample's final round is shown");
  });
});

describe('several runs on one page', () => {
  it('overlays the runs on each chart and gives each a config column', async () => {
    const out = path.join(tmp, 'both.html');
    const r = await writeReport([motifRun, grpoRun], out);
    assert.equal(r.runs, 2);
    assert.equal(r.steps, 8);
    const html = await readFile(out, 'utf8');
    const data = embedded(html);
    assert.deepEqual(
      data.runs.map((x) => x.label),
      ['motif-k2 (motif, k=2)', 'grpo-base (grpo)'],
    );
    assert.notEqual(data.runs[0].color, data.runs[1].color);
    const reward = data.charts.find((c) => c.id === 'reward');
    assert.deepEqual(
      reward?.series.map((s) => s.run),
      [0, 1],
    );
    const grpoLogged = await jsonLines(path.join(grpoRun, 'metrics.jsonl'));
    assert.deepEqual(
      reward?.series[1].values,
      grpoLogged.map((m) => (m.reward as { mean: number }).mean),
    );
    // The config table: a header cell per run, and the Method row differs (shaded).
    const methodRow = /<tr class="differs"><th>Method<\/th><td>motif<\/td><td>grpo<\/td><\/tr>/;
    assert.match(html, methodRow);
    assert.match(html, /<tr class="differs"><th>Rounds R<\/th><td>3<\/td><td>1<\/td><\/tr>/);
    assert.match(html, /<tr><th>Max tokens per round<\/th><td>200<\/td><td>200<\/td><\/tr>/);
    assert.equal((html.match(/<summary>manifest\.json of /g) ?? []).length, 2);
  });

  it('puts runs with different steps on one step axis and labels same-named folders apart', async () => {
    const a = await handRun('same/run', {
      metrics: [1, 2, 3].map((step) => metricLine({ step, reward: { mean: step / 10 }, loss: 'NaN' })).join(''),
    });
    const b = await handRun('other/run', {
      metrics: [2, 4].map((step) => metricLine({ step, reward: { mean: -step } })).join(''),
    });
    const html = await readFile((await writeReport([a, b], path.join(tmp, 'axes.html'))).out, 'utf8');
    const data = embedded(html);
    assert.deepEqual(
      data.runs.map((x) => x.label),
      ['run (motif, k=2) #1', 'run (motif, k=2) #2'],
    );
    const reward = data.charts.find((c) => c.id === 'reward');
    assert.deepEqual(reward?.series[0], {
      run: 0,
      label: 'run (motif, k=2) #1',
      dashed: false,
      steps: [1, 2, 3],
      values: [0.1, 0.2, 0.3],
    });
    assert.deepEqual(reward?.series[1].steps, [2, 4]);
    assert.deepEqual(reward?.series[1].values, [-2, -4]);
    // A non-finite loss (logged as the string "NaN") is a gap, not a number.
    const loss = data.charts.find((c) => c.id === 'loss');
    assert.deepEqual(loss?.series[0].values, [null, null, null]);
    assert.equal(loss?.hasData, false);
    assert.match(html, /data-chart="loss" data-has-data="false">.*No values logged/);
  });

  it('shows summary.json accuracies when a run has them', async () => {
    const dir = await handRun('with-summary', {
      metrics: metricLine({ step: 1 }),
      summary: { accuracyBefore: 0.25, accuracyAfter: 0.5 },
    });
    const html = await readFile((await writeReport([dir], path.join(tmp, 'sum.html'))).out, 'utf8');
    assert.match(html, /<th>Held-out accuracy before → after<\/th><td>25\.0% → 50\.0%<\/td>/);
  });
});

describe('escaping', () => {
  const evil = '</script><script>window.pwned=1</script><!-- & "quoted" \u2028';

  it('keeps text from the logs inert in the JSON, the table and the samples', async () => {
    const dir = await handRun('evil', {
      manifest: { config: { method: evil, trajectories: 2 }, dataset: { file: evil } },
      metrics: metricLine({ step: 1, reward: { mean: 1 }, rewards: { [evil]: { mean: 1 } }, note: evil }),
      samples: metricLine({ step: 1, id: evil, question: `<b>${evil}</b>`, reference: evil, firstRound: evil }),
    });
    const html = await readFile((await writeReport([dir], path.join(tmp, 'evil.html'))).out, 'utf8');
    assert.ok(!html.includes('<script>window.pwned'), 'no injected script element');
    assert.ok(!html.includes('<b></script>'), 'no raw markup from a sample');
    // Exactly the page's own three script elements open and close.
    assert.equal((html.match(/<script\b/gi) ?? []).length, 3);
    assert.equal((html.match(/<\/script/gi) ?? []).length, 3);
    // The embedded JSON parses back to the very same strings.
    const data = embedded(html);
    assert.equal((data.raw[0].metrics[0] as { note: string }).note, evil);
    assert.equal((data.raw[0].manifest.dataset as { file: string }).file, evil);
    assert.ok(data.charts.some((c) => c.id === `reward-${evil}`));
    // The escaped text is shown.
    assert.ok(html.includes(escapeHtml(`<b>${evil}</b>`)));
    assert.ok(html.includes(`<td>${escapeHtml(evil)}</td>`));
  });

  it('escapeHtml and jsonForScript: hand-checked outputs', () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
    assert.equal(jsonForScript({ s: '</script>&\u2028' }), '{"s":"\\u003c/script\\u003e\\u0026\\u2028"}');
    assert.deepEqual(JSON.parse(jsonForScript({ s: '</script>&\u2028' })), { s: '</script>&\u2028' });
  });
});

describe('bad run folders and logs', () => {
  const out = () => path.join(tmp, 'bad.html');

  it('refuses a missing folder, a folder with no manifest and a manifest that is not JSON', async () => {
    await rejectsWith(writeReport([path.join(tmp, 'nope')], out()), 'ERR_MOTIF_IO', /nope: no such folder/);
    const empty = path.join(tmp, 'empty-dir');
    await mkdir(empty, { recursive: true });
    await rejectsWith(writeReport([empty], out()), 'ERR_MOTIF_FORMAT', /empty-dir\/manifest\.json: missing/);
    const dir = await handRun('bad-manifest', { metrics: metricLine({ step: 1 }) });
    await writeFile(path.join(dir, 'manifest.json'), '{"config": ');
    await rejectsWith(writeReport([dir], out()), 'ERR_MOTIF_FORMAT', /bad-manifest\/manifest\.json: not valid JSON/);
  });

  it('refuses a missing or empty metrics.jsonl', async () => {
    const none = await handRun('no-metrics', {});
    await rejectsWith(writeReport([none], out()), 'ERR_MOTIF_FORMAT', /no-metrics\/metrics\.jsonl: missing/);
    const empty = await handRun('empty-metrics', { metrics: '\n\n' });
    await rejectsWith(writeReport([empty], out()), 'ERR_MOTIF_FORMAT', /empty-metrics\/metrics\.jsonl: empty/);
  });

  it('names file:line of a damaged line', async () => {
    const cases: [string, string, RegExp][] = [
      ['torn-middle', `${metricLine({ step: 1 })}{"step": 2, "re\n${metricLine({ step: 3 })}`, /:2: not a JSON line/],
      ['not-object', `${metricLine({ step: 1 })}\n[1, 2]\n`, /:3: expected a JSON object/],
      ['no-step', metricLine({ loss: 1 }), /:1: expected a number in "step"/],
      ['string-step', metricLine({ step: '1' }), /:1: expected a number in "step"/],
    ];
    for (const [name, metrics, pattern] of cases) {
      const dir = await handRun(name, { metrics });
      await rejectsWith(
        writeReport([dir], out()),
        'ERR_MOTIF_FORMAT',
        new RegExp(`${name}/metrics\\.jsonl${pattern.source}`),
      );
    }
    const badSamples = await handRun('bad-samples', {
      metrics: metricLine({ step: 1 }),
      samples: `${metricLine({ step: 1 })}oops\n`,
    });
    await rejectsWith(
      writeReport([badSamples], out()),
      'ERR_MOTIF_FORMAT',
      /bad-samples\/samples\.jsonl:2: not a JSON line/,
    );
  });

  it('leaves out a torn last line (no newline) and says so on the page', async () => {
    const dir = await handRun('torn-last', {
      metrics: `${metricLine({ step: 1 })}${metricLine({ step: 2 })}{"step":3,"rew`,
    });
    const r = await writeReport([dir], path.join(tmp, 'torn.html'));
    assert.equal(r.steps, 2);
    const html = await readFile(r.out, 'utf8');
    assert.match(html, /torn-last\/metrics\.jsonl:3: an incomplete last line \(a torn write\) was left out/);
  });

  it('refuses an empty list of runs and an output folder that does not exist', async () => {
    await rejectsWith(writeReport([], out()), 'ERR_MOTIF_INVALID_ARGUMENT', /runDirs/);
    const missing = path.join(tmp, 'no-such-folder', 'r.html');
    await rejectsWith(writeReport([motifRun], missing), 'ERR_MOTIF_IO', /no-such-folder\/r\.html: cannot write/);
  });
});

describe('writeRunReport (the end of a training run)', () => {
  it('writes RUN_DIR/report.html atomically, leaving no temporary file', async () => {
    const r = await writeRunReport(motifRun);
    assert.equal(r.out, path.join(motifRun, 'report.html'));
    assert.ok((await stat(r.out)).size > 50_000, 'the page holds uPlot');
    assert.deepEqual(
      (await readdir(motifRun)).filter((n) => n.includes('.tmp')),
      [],
    );
  });

  it('renders a run that stopped before its first step', async () => {
    const dir = await handRun('zero-steps', {});
    const r = await writeRunReport(dir);
    assert.equal(r.steps, 0);
    const html = await readFile(r.out, 'utf8');
    const data = embedded(html);
    assert.equal(data.runs[0].stepsLogged, 0);
    assert.ok(data.charts.every((c) => !c.hasData));
    assert.match(html, /\(0 steps\)/);
    assert.match(html, /No samples logged/);
  });
});

describe('motif-native report', () => {
  it('defaults to RUN_DIR/report.html for one run and ./report.html for several', () => {
    assert.equal(defaultReportPath(['runs/a']), path.join('runs/a', 'report.html'));
    assert.equal(defaultReportPath(['runs/a', 'runs/b']), path.resolve('report.html'));
  });

  it('writes the page and names it; a bad folder exits 1 with the message', () => {
    const out = path.join(tmp, 'cli.html');
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'lib/cli/cli.ts', 'report', ...args], { encoding: 'utf8' });
    const ok = cli(motifRun, grpoRun, '--out', out);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /wrote .*cli\.html: 2 runs, 8 steps/);
    const bad = cli(path.join(tmp, 'nope'));
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /nope: no such folder .*\[ERR_MOTIF_IO\]/);
  });
});
