/**
 * html.ts — renders ReportData (report-data.ts) as one self-contained HTML page: uPlot's minified
 * script and stylesheet read from node_modules and inlined (with its MIT licence), the report's data
 * embedded as JSON in a <script type="application/json"> (every '<', '>' and '&' written as a \\u
 * escape, so no text can close the element), and the config table and sample trajectories written
 * as static HTML with every text escaped. Nothing is loaded from the network or from other files.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { MotifError } from '../native/errors.js';
import { version } from '../version.js';
import { PAGE_SCRIPT } from './page-script.js';
import type { ReportData, SampleView } from './report-data.js';

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * JSON for a <script type="application/json"> element: '<', '>', '&' and the two JavaScript line
 * separators become \\u escapes (JSON.parse reads them back unchanged), so '</script>' or '<!--' in
 * any string of the data cannot end the element early.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** The bundled plotting library: uPlot's minified IIFE build, its stylesheet and licence. */
export interface PlotLibrary {
  name: string;
  version: string;
  script: string;
  css: string;
  license: string;
}

let cachedLibrary: PlotLibrary | undefined;

/** Reads uPlot from node_modules (once per process). */
export function loadPlotLibrary(): PlotLibrary {
  if (cachedLibrary) return cachedLibrary;
  const require = createRequire(import.meta.url);
  let pkgFile: string;
  try {
    pkgFile = require.resolve('uplot/package.json');
  } catch (err) {
    throw new MotifError(
      'ERR_MOTIF_INTERNAL',
      "the plotting library 'uplot' is not installed (it is a dependency of motif-native; reinstall the package)",
      { cause: err },
    );
  }
  const dir = path.dirname(pkgFile);
  const read = (rel: string) => {
    try {
      return readFileSync(path.join(dir, rel), 'utf8');
    } catch (err) {
      throw new MotifError('ERR_MOTIF_INTERNAL', `${path.join(dir, rel)}: cannot read uPlot's file`, { cause: err });
    }
  };
  const pkg = JSON.parse(read('package.json')) as { version: string };
  cachedLibrary = {
    name: 'uPlot',
    version: pkg.version,
    script: read('dist/uPlot.iife.min.js'),
    css: read('dist/uPlot.min.css'),
    license: read('LICENSE'),
  };
  return cachedLibrary;
}

/** Checks that `text` can sit inside a <script>/<style> element without ending it early. */
function rawElementText(text: string, element: 'script' | 'style', what: string): string {
  if (text.toLowerCase().includes(`</${element}`) || text.includes('<!--'))
    throw new MotifError('ERR_MOTIF_INTERNAL', `${what} holds '</${element}' or '<!--'; it cannot be inlined`);
  return text;
}

const PAGE_CSS = `
  body { font: 14px/1.4 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0; color: #222; background: #fff; }
  header, main { padding: 0 24px; }
  header { border-bottom: 1px solid #ddd; padding-bottom: 8px; }
  h1 { font-size: 20px; margin: 16px 0 4px; }
  h2 { font-size: 17px; margin: 24px 0 8px; border-bottom: 1px solid #eee; }
  h3 { font-size: 15px; margin: 16px 0 6px; }
  .meta { color: #666; margin: 0 0 8px; }
  .runs { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: 6px 20px; }
  .swatch { display: inline-block; width: 14px; height: 4px; margin-right: 6px; vertical-align: middle; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 12px 20px; }
  figure.chart { margin: 0; min-width: 0; }
  figure.chart figcaption { font-weight: 600; margin-bottom: 2px; }
  .u-legend { font-size: 12px; }
  .empty { color: #888; font-style: italic; }
  .warning { color: #a33; }
  table.config { border-collapse: collapse; }
  table.config th, table.config td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
  table.config td { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-word; }
  table.config tr.differs th { background: #fff6dc; }
  details pre, .sample pre { white-space: pre-wrap; word-break: break-word; font-size: 12px; background: #f6f6f6;
    padding: 6px 8px; margin: 2px 0 6px; border-radius: 3px; }
  .sample { border-left: 3px solid #ccc; padding-left: 10px; margin-bottom: 14px; }
  .sample ol { padding-left: 20px; margin: 4px 0; }
  .sample .round { color: #666; font-size: 12px; }
`;

function renderCharts(data: ReportData): string {
  const sections: string[] = [];
  for (const section of [...new Set(data.charts.map((c) => c.section))]) {
    const figures = data.charts
      .filter((c) => c.section === section)
      .map(
        (c) =>
          `<figure class="chart" data-chart="${escapeHtml(c.id)}" data-has-data="${c.hasData}">` +
          `<figcaption>${escapeHtml(c.title)}</figcaption><div class="plot"></div>` +
          (c.hasData ? '' : '<p class="empty">No values logged.</p>') +
          '</figure>',
      );
    sections.push(`<h2>${escapeHtml(section)}</h2>\n<div class="grid">\n${figures.join('\n')}\n</div>`);
  }
  return sections.join('\n');
}

function renderConfig(data: ReportData, manifests: readonly unknown[]): string {
  const several = data.runs.length > 1;
  const head = `<tr><th></th>${data.runs
    .map((r) => `<th><span class="swatch" style="background:${r.color}"></span>${escapeHtml(r.label)}</th>`)
    .join('')}</tr>`;
  const rows = data.config.map((row) => {
    // Rows whose values differ between runs are shaded; the folder always differs, so it is not.
    const differs = several && row.name !== 'Run folder' && new Set(row.values).size > 1;
    return `<tr${differs ? ' class="differs"' : ''}><th>${escapeHtml(row.name)}</th>${row.values
      .map((v) => `<td>${escapeHtml(v)}</td>`)
      .join('')}</tr>`;
  });
  const full = data.runs.map(
    (r, i) =>
      `<details><summary>manifest.json of ${escapeHtml(r.label)}</summary>` +
      `<pre>${escapeHtml(JSON.stringify(manifests[i], null, 2))}</pre></details>`,
  );
  const note = several ? '<p class="meta">Shaded rows differ between the runs.</p>' : '';
  return `<h2>Configuration</h2>\n${note}<table class="config">\n${head}\n${rows.join('\n')}\n</table>\n${full.join('\n')}`;
}

function renderSample(s: SampleView): string {
  const trajectories = s.trajectories.map(
    (rounds, t) =>
      `<p class="round">Trajectory ${t + 1}${rounds.length > 1 ? `, rounds 1–${rounds.length}` : ''}</p><ol>${rounds
        .map((text) => `<li><pre>${escapeHtml(text)}</pre></li>`)
        .join('')}</ol>`,
  );
  return (
    `<div class="sample"><p><b>Step ${s.step ?? '—'}</b>, question ${escapeHtml(s.id)}: ` +
    `reward ${escapeHtml(s.reward)}, advantage ${escapeHtml(s.advantage)}, ` +
    `final answer${s.trajectories.length > 1 ? 's' : ''}: ${escapeHtml(s.correct)}</p>` +
    `<pre>${escapeHtml(s.question)}</pre><p>Reference answer: <code>${escapeHtml(s.reference)}</code></p>` +
    `${trajectories.join('')}</div>`
  );
}

function renderSamples(data: ReportData): string {
  const parts = data.runs.map((r, i) => {
    const samples = data.samples[i];
    const body = samples.length ? samples.map(renderSample).join('\n') : '<p class="empty">No samples logged.</p>';
    return `<details${i === 0 ? ' open' : ''}><summary>${escapeHtml(r.label)}</summary>\n${body}\n</details>`;
  });
  return `<h2>Sample trajectories</h2>\n<p class="meta">From the first and the last logged step of each run.</p>\n${parts.join('\n')}`;
}

/** The embedded JSON: the chart series the page draws, and each run's manifest and metrics as logged. */
export interface EmbeddedData {
  runs: ReportData['runs'];
  charts: ReportData['charts'];
  raw: { dir: string; manifest: unknown; summary?: unknown; metrics: unknown[] }[];
}

/** The whole page. */
export function renderReportHtml(
  data: ReportData,
  raw: EmbeddedData['raw'],
  options: { generatedAt?: Date; library?: PlotLibrary } = {},
): string {
  const lib = options.library ?? loadPlotLibrary();
  const generatedAt = (options.generatedAt ?? new Date()).toISOString();
  const embedded: EmbeddedData = { runs: data.runs, charts: data.charts, raw };
  const title = `Training report: ${data.runs.map((r) => r.label).join(', ')}`;
  const runList = data.runs
    .map(
      (r) =>
        `<li><span class="swatch" style="background:${r.color}"></span>${escapeHtml(r.label)} ` +
        `<span class="meta">(${r.stepsLogged} step${r.stepsLogged === 1 ? '' : 's'})</span></li>`,
    )
    .join('\n');
  const warnings = data.runs.flatMap((r, i) =>
    data.warnings[i].map((w) => `<p class="warning">${escapeHtml(r.label)}: ${escapeHtml(w)}</p>`),
  );
  const licenseComment = `/*! ${lib.name} ${lib.version}, bundled by motif-native.\n${lib.license.replace(/\*\//g, '* /')}*/`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="motif-native ${escapeHtml(version)}">
<title>${escapeHtml(title)}</title>
<style>${rawElementText(lib.css, 'style', "uPlot's stylesheet")}</style>
<style>${PAGE_CSS}</style>
</head>
<body>
<header>
<h1>${escapeHtml(title)}</h1>
<p class="meta">Written ${escapeHtml(generatedAt)} by motif-native ${escapeHtml(version)}. Charts: one point per optimizer step; hover for values, drag to zoom, double-click to reset.</p>
<ul class="runs">
${runList}
</ul>
${warnings.join('\n')}
</header>
<main>
${renderCharts(data)}
${renderConfig(
  data,
  raw.map((r) => r.manifest),
)}
${renderSamples(data)}
</main>
<script id="motif-report-data" type="application/json">${jsonForScript(embedded)}</script>
<script>${rawElementText(`${licenseComment}\n${lib.script}`, 'script', "uPlot's script")}</script>
<script>${rawElementText(PAGE_SCRIPT, 'script', 'the page script')}</script>
</body>
</html>
`;
}
