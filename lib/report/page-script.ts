/**
 * page-script.ts — the JavaScript that runs inside report.html (as text; it is inlined into the page
 * after uPlot). It reads the embedded JSON (<script id="motif-report-data">), puts every chart's runs
 * on one shared step axis (null where a run has no value, lines drawn across such gaps) and draws
 * each chart with uPlot into its <figure data-chart="ID">, which then gets data-rendered="true".
 * Kept to plain ES2017 with no template literals so it can live in a TypeScript template string;
 * the browser test (test/browser/report.test.ts) runs it and fails on any page or console error.
 */
export const PAGE_SCRIPT = `
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('motif-report-data').textContent);
  var plots = [];
  // Tick spacings of the step axis: whole steps only.
  var STEP_INCREMENTS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

  // The chart's series on one x axis: the sorted union of their steps.
  function align(chart) {
    var seen = {};
    var xs = [];
    chart.series.forEach(function (s) {
      s.steps.forEach(function (step) {
        if (!seen[step]) { seen[step] = true; xs.push(step); }
      });
    });
    xs.sort(function (a, b) { return a - b; });
    var index = {};
    xs.forEach(function (step, i) { index[step] = i; });
    var columns = chart.series.map(function (s) {
      var col = xs.map(function () { return null; });
      s.steps.forEach(function (step, i) { col[index[step]] = s.values[i]; });
      return col;
    });
    return [xs].concat(columns);
  }

  function formatNumber(v) {
    if (v === null || v === undefined) return '—';
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
    return String(Number(v.toPrecision(4)));
  }

  // The y range of a chart fitted to its data; a flat line (all values equal) sits mid-chart.
  function fitRange(u, min, max) {
    if (min === null || max === null) return [0, 1];
    if (min === max) {
      var pad = Math.abs(min) * 0.1 || 1;
      return [min - pad, max + pad];
    }
    return uPlot.rangeNum(min, max, 0.1, true);
  }

  function plotWidth(el) {
    return Math.max(280, Math.floor(el.getBoundingClientRect().width));
  }

  data.charts.forEach(function (chart) {
    if (!chart.hasData) return;
    var figure = document.querySelector('figure[data-chart="' + chart.id + '"]');
    var target = figure.querySelector('.plot');
    var series = [{ label: 'step' }].concat(chart.series.map(function (s) {
      var run = data.runs[s.run];
      return {
        label: s.label,
        stroke: run.color,
        width: 2,
        dash: s.dashed ? [6, 4] : undefined,
        spanGaps: true,
        value: function (u, v) { return formatNumber(v); },
      };
    }));
    var opts = {
      width: plotWidth(target),
      height: 220,
      scales: { x: { time: false }, y: { range: chart.yRange || fitRange } },
      series: series,
      axes: [
        { label: 'step', labelSize: 16, size: 36, incrs: STEP_INCREMENTS, values: function (u, ticks) { return ticks.map(formatNumber); } },
        { values: function (u, ticks) { return ticks.map(formatNumber); }, size: 60 },
      ],
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false } },
    };
    plots.push({ plot: new uPlot(opts, align(chart), target), target: target });
    figure.setAttribute('data-rendered', 'true');
  });

  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      plots.forEach(function (p) { p.plot.setSize({ width: plotWidth(p.target), height: 220 }); });
    }, 100);
  });
})();
`;
