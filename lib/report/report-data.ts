/**
 * report-data.ts — turns the run records (read-run.ts) into what the report page shows: one label and
 * colour per run, the per-step chart series (every run of a chart on one shared step axis), the rows
 * of the config summary table, and a few sample trajectories. Pure functions, no I/O, no HTML.
 */
import path from 'node:path';
import type { RunRecord } from './read-run.js';

/** One line of a chart: a run's values of a metric per logged step (null where not logged or not finite). */
export interface ChartSeries {
  /** Index of the run (into ReportData.runs). */
  run: number;
  /** Legend label. */
  label: string;
  /** Drawn dashed (a second series of the same run on one chart). */
  dashed: boolean;
  steps: number[];
  values: (number | null)[];
}

/** One chart of the page. */
export interface ChartSpec {
  id: string;
  section: string;
  title: string;
  series: ChartSeries[];
  /** True when at least one value of some series is a finite number. */
  hasData: boolean;
  /** Fixed y range (fractions: 0..1); absent: fitted to the data. */
  yRange?: [number, number];
}

/** A run as named on the page. */
export interface RunView {
  label: string;
  /** CSS colour of the run's lines. */
  color: string;
  dir: string;
  stepsLogged: number;
}

/** One row of the config summary table: a value per run. */
export interface ConfigRow {
  name: string;
  values: string[];
}

/** A sample trajectory as shown on the page (strings already cut to a readable length). */
export interface SampleView {
  step: number | null;
  id: string;
  question: string;
  reference: string;
  /** Each trajectory's round-by-round responses; a single round when the run had one. */
  trajectories: string[][];
  correct: string;
  reward: string;
  advantage: string;
}

/** Everything the page shows. */
export interface ReportData {
  runs: RunView[];
  charts: ChartSpec[];
  config: ConfigRow[];
  /** Samples per run (same order as runs). */
  samples: SampleView[][];
  /** Warnings per run (same order as runs). */
  warnings: string[][];
}

/** Line colours, one per run in order (Tableau 10: distinct, readable on white). */
export const RUN_COLORS = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
] as const;

/** Samples shown per run: this many from the first logged step and as many from the last. */
const SAMPLES_PER_END = 2;
/** Longest response text shown in full (characters). */
const MAX_TEXT = 3000;

/** The value at `keys` inside nested objects, or undefined. */
function dig(obj: unknown, keys: readonly string[]): unknown {
  let v = obj;
  for (const k of keys) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

const finiteOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

const configOf = (r: RunRecord): Record<string, unknown> => {
  const c = r.manifest.config;
  return c !== null && typeof c === 'object' ? (c as Record<string, unknown>) : {};
};

/** Labels that tell runs apart: the folder name plus method (and k for MOTIF); made unique. */
export function runLabels(records: readonly RunRecord[]): string[] {
  const labels = records.map((r) => {
    const c = configOf(r);
    const method = typeof c.method === 'string' ? c.method : undefined;
    const k = method === 'motif' && typeof c.trajectories === 'number' ? `, k=${c.trajectories}` : '';
    const base = path.basename(r.dir);
    if (!method) return base;
    // A folder named after its method needs it only once: "motif (k=2)", not "motif (motif, k=2)".
    return base === method ? (k ? `${base} (${k.slice(2)})` : base) : `${base} (${method}${k})`;
  });
  const seen = new Map<string, number>();
  return labels.map((l) => {
    const n = (seen.get(l) ?? 0) + 1;
    seen.set(l, n);
    return labels.filter((x) => x === l).length > 1 ? `${l} #${n}` : l;
  });
}

/** The reward component names over all runs: each manifest's order, then any only seen in the logs. */
export function rewardNames(records: readonly RunRecord[]): string[] {
  const names: string[] = [];
  const add = (n: unknown) => {
    if (typeof n === 'string' && !names.includes(n)) names.push(n);
  };
  for (const r of records) {
    const rewards = r.manifest.rewards;
    if (Array.isArray(rewards)) for (const w of rewards) add(dig(w, ['name']));
  }
  for (const r of records)
    for (const s of r.steps) {
      const comps = s.rewards;
      if (comps !== null && typeof comps === 'object') for (const n of Object.keys(comps)) add(n);
    }
  return names;
}

interface MetricLine {
  keys: readonly string[];
  /** Appended to the run's label in the legend (a second line of the same run). */
  suffix?: string;
  dashed?: boolean;
}

function chart(
  records: readonly RunRecord[],
  labels: readonly string[],
  id: string,
  section: string,
  title: string,
  lines: readonly MetricLine[],
  yRange?: [number, number],
): ChartSpec {
  const series: ChartSeries[] = [];
  records.forEach((r, run) => {
    for (const line of lines) {
      const values = r.steps.map((s) => finiteOrNull(dig(s, line.keys)));
      // A second line that a run never logged (no continuations in a one-round run) is left out.
      if (line.suffix && !values.some((v) => v !== null)) continue;
      series.push({
        run,
        label: line.suffix ? `${labels[run]} · ${line.suffix}` : labels[run],
        dashed: line.dashed ?? false,
        steps: r.steps.map((s) => s.step as number),
        values,
      });
    }
  });
  const hasData = series.some((s) => s.values.some((v) => v !== null));
  return yRange ? { id, section, title, series, hasData, yRange } : { id, section, title, series, hasData };
}

/** The charts of the page, in order (ids are stable: tests and the page script use them). */
export function buildCharts(records: readonly RunRecord[], labels: readonly string[]): ChartSpec[] {
  const c = (id: string, section: string, title: string, ...lines: MetricLine[]) =>
    chart(records, labels, id, section, title, lines);
  const fraction = (id: string, section: string, title: string, keys: readonly string[]) =>
    chart(records, labels, id, section, title, [{ keys }], [0, 1]);
  return [
    c('reward', 'Reward and accuracy', 'Total reward (mean over completions)', { keys: ['reward', 'mean'] }),
    fraction('accuracy', 'Reward and accuracy', 'Accuracy of final answers', ['accuracy']),
    ...rewardNames(records).map((name) =>
      c(`reward-${name}`, 'Reward components', `Reward component: ${name} (mean)`, {
        keys: ['rewards', name, 'mean'],
      }),
    ),
    c('kl', 'Policy change', 'KL to the reference policy', { keys: ['kl'] }),
    fraction('clip-fraction', 'Policy change', 'Clipped token fraction', ['clipFraction']),
    c(
      'completion-length',
      'Generation',
      'Completion length, tokens (mean; dashed: later rounds)',
      { keys: ['completionLength', 'mean'] },
      { keys: ['continuationLength', 'mean'], suffix: 'later rounds', dashed: true },
    ),
    fraction('truncated', 'Generation', 'Completions cut at the token budget (fraction)', ['truncatedFraction']),
    c('tokens-per-second', 'Generation', 'Rollout speed, generated tokens/s', {
      keys: ['timing', 'tokensPerSecond'],
    }),
    c('loss', 'Optimization', 'Loss', { keys: ['loss'] }),
    c('grad-norm', 'Optimization', 'Gradient norm (before clipping)', { keys: ['gradNorm'] }),
    c('lr', 'Optimization', 'Learning rate', { keys: ['lr'] }),
  ];
}

/** A config value as table text ('—' when absent). */
export function formatValue(v: unknown): string {
  if (v === undefined || v === null || v === '') return '—';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x !== 'object' || x === null)) return v.map(formatValue).join(', ');
  return JSON.stringify(v);
}

const percent = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : '—');

function lastNumber(steps: readonly Record<string, unknown>[], keys: readonly string[]): number | null {
  for (let i = steps.length - 1; i >= 0; i--) {
    const v = finiteOrNull(dig(steps[i], keys));
    if (v !== null) return v;
  }
  return null;
}

/** The rows of the config summary table (one value per run). */
export function buildConfigRows(records: readonly RunRecord[]): ConfigRow[] {
  const rows: [string, (r: RunRecord, c: Record<string, unknown>) => unknown][] = [
    ['Run folder', (r) => r.dir],
    ['Method', (_r, c) => c.method],
    ['Rounds R', (_r, c) => c.rounds],
    ['Samples per question m', (_r, c) => c.numGenerations],
    ['Trajectories per sample k', (_r, c) => c.trajectories],
    ['Continuation policy', (_r, c) => c.continuationPolicy],
    ['Steps (configured)', (_r, c) => c.steps],
    ['Steps logged', (r) => (r.steps.length ? `${r.steps.length} (last: ${r.steps.at(-1)?.step})` : '0')],
    ['Questions per step', (_r, c) => c.batchSize],
    ['Gradient accumulation', (_r, c) => c.gradAccum],
    ['Max tokens per round', (_r, c) => c.maxTokens],
    ['Temperature / top-p', (_r, c) => `${formatValue(c.temperature)} / ${formatValue(c.topP)}`],
    ['Learning rate (peak)', (_r, c) => c.lr],
    ['Warmup ratio', (_r, c) => c.warmupRatio],
    ['Weight decay', (_r, c) => c.weightDecay],
    ['Max gradient norm', (_r, c) => c.maxGradNorm],
    ['Loss', (_r, c) => c.lossType],
    ['Clip ε (low / high)', (_r, c) => `${formatValue(c.epsilon)} / ${formatValue(c.epsilonHigh)}`],
    ['KL coefficient β', (_r, c) => c.beta],
    ['Reward scaling', (_r, c) => c.scaleRewards],
    ['Reward metric', (_r, c) => c.rewardMetric],
    [
      'Rewards (weight)',
      (r) =>
        Array.isArray(r.manifest.rewards)
          ? r.manifest.rewards.map((w) => `${formatValue(dig(w, ['name']))} (${formatValue(dig(w, ['weight']))})`)
          : undefined,
    ],
    [
      'LoRA',
      (_r, c) => {
        const l = c.lora as Record<string, unknown> | undefined;
        if (!l || typeof l !== 'object') return undefined;
        const rs = l.rslora ? ', rsLoRA' : '';
        return `r=${formatValue(l.rank)}, α=${formatValue(l.alpha)}${rs}; ${formatValue(l.targets)}`;
      },
    ],
    ['Seed', (r, c) => c.seed ?? r.manifest.seed],
    ['Base model', (r) => dig(r.manifest, ['model', 'base'])],
    ['Dataset', (r) => dig(r.manifest, ['dataset', 'file'])],
    [
      'Questions (train / held out)',
      (r) =>
        `${formatValue(dig(r.manifest, ['dataset', 'trainRows']))} / ${formatValue(dig(r.manifest, ['dataset', 'heldOutRows']))}`,
    ],
    ['Final reward (last step)', (r) => lastNumber(r.steps, ['reward', 'mean'])?.toFixed(3)],
    ['Final accuracy (last step)', (r) => percent(lastNumber(r.steps, ['accuracy']))],
    [
      'Held-out accuracy before → after',
      (r) =>
        r.summary && ('accuracyBefore' in r.summary || 'accuracyAfter' in r.summary)
          ? `${percent(r.summary.accuracyBefore)} → ${percent(r.summary.accuracyAfter)}`
          : undefined,
    ],
    ['Skipped updates', (r) => r.steps.filter((s) => s.skipped === true).length],
    [
      'Wall time of the steps',
      (r) => {
        const secs = r.steps.reduce((a, s) => a + (finiteOrNull(dig(s, ['timing', 'stepSeconds'])) ?? 0), 0);
        return r.steps.length ? `${secs.toFixed(1)} s` : undefined;
      },
    ],
    ['Started', (r) => r.manifest.createdAt],
    ['Package version', (r) => dig(r.manifest, ['package', 'version'])],
    [
      'Git commit',
      (r) => {
        const commit = dig(r.manifest, ['git', 'commit']);
        if (typeof commit !== 'string') return undefined;
        return `${commit.slice(0, 12)}${dig(r.manifest, ['git', 'dirty']) === true ? ' (uncommitted changes)' : ''}`;
      },
    ],
  ];
  return rows.map(([name, get]) => ({ name, values: records.map((r) => formatValue(get(r, configOf(r)))) }));
}

const text = (v: unknown): string => {
  const s = typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v);
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}\n… (${s.length - MAX_TEXT} more characters)` : s;
};

function sampleView(s: Record<string, unknown>): SampleView {
  const trajectories =
    Array.isArray(s.trajectories) && s.trajectories.length > 0
      ? s.trajectories.map((t) => (Array.isArray(t) ? t.map(text) : [text(t)]))
      : [[text(s.firstRound ?? s.response)]];
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : formatValue(v));
  return {
    step: finiteOrNull(s.step),
    id: formatValue(s.id),
    question: text(s.question),
    reference: text(s.reference),
    trajectories,
    correct: Array.isArray(s.correct)
      ? s.correct.map((c) => (c === true ? 'right' : c === false ? 'wrong' : '?')).join(', ')
      : formatValue(s.correct),
    reward: num(s.reward),
    advantage: num(s.advantage),
  };
}

/** A few samples of a run: some from its first logged step and some from its last. */
export function pickSamples(r: RunRecord): SampleView[] {
  if (r.samples.length === 0) return [];
  const first = r.samples[0].step;
  const last = r.samples[r.samples.length - 1].step;
  const early = r.samples.filter((s) => s.step === first).slice(0, SAMPLES_PER_END);
  const late = first === last ? [] : r.samples.filter((s) => s.step === last).slice(0, SAMPLES_PER_END);
  return [...early, ...late].map(sampleView);
}

/** Everything the page shows, from the run records. */
export function buildReportData(records: readonly RunRecord[]): ReportData {
  const labels = runLabels(records);
  return {
    runs: records.map((r, i) => ({
      label: labels[i],
      color: RUN_COLORS[i % RUN_COLORS.length],
      dir: r.dir,
      stepsLogged: r.steps.length,
    })),
    charts: buildCharts(records, labels),
    config: buildConfigRows(records),
    samples: records.map(pickSamples),
    warnings: records.map((r) => r.warnings),
  };
}
