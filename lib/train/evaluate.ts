/**
 * evaluate.ts — greedy multi-round pass@1, as the MOTIF paper evaluates: round 1 from the question,
 * then rounds 2..R each from the question and the previous round's progress (temperature 0), the
 * final round's response graded two ways: the paper's strict metric (`\boxed{ref}` verbatim in the
 * final response) and the robust grader (extractAnswer + answersMatch). One JSON line per problem.
 */
import { performance } from 'node:perf_hooks';
import { type DatasetOptions, type DatasetRow, loadDataset } from '../data/datasets.js';
import { DEFAULT_TEMPLATES, type ProtocolTemplates } from '../motif/protocol.js';
import { MotifError } from '../native/errors.js';
import { gradeResponse, type MatchOptions } from '../text/answers.js';
import { extractAnswer } from '../text/extract.js';
import { type PromptStyle, type RolloutModel, rollout } from './rollout.js';
import { writeFileAtomic } from './run-dir.js';

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /** Rows, or a dataset file read with lib/data's loadDataset. */
  dataset: readonly DatasetRow[] | string;
  datasetOptions?: DatasetOptions;
  /** Evaluate the first N rows only. */
  limit?: number;
  /** Rounds R (default 3). 'grpo' and 'base' prompts use one round. */
  rounds?: number;
  /** First-round prompt (default 'motif'). */
  prompt?: PromptStyle;
  /** Tokens a round, at most (default 1024). */
  maxTokens?: number;
  /** Questions per generate call (default 64). */
  batchSize?: number;
  templates?: ProtocolTemplates;
  /** Per-problem JSONL file to write (atomically, at the end). */
  out?: string;
  /** Options of answersMatch for the robust metric. */
  match?: MatchOptions;
  /** Called after each batch with problems done and total. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** One problem's evaluation (a line of the JSONL). */
export interface EvaluatedProblem {
  id: string;
  question: string;
  reference: string;
  /** Each round's response, in order; the last is graded. */
  rounds: string[];
  /** What extractAnswer finds in the final response (null: nothing). */
  extracted: string | null;
  /** The paper's metric: `\boxed{reference}` verbatim in the final response. */
  strict: boolean;
  /** The robust grader: extractAnswer + answersMatch. */
  match: boolean;
  /** First-round tokens generated and whether it hit the limit. */
  firstRoundTokens: number;
  truncated: boolean;
}

/** What {@link evaluate} returns. */
export interface EvaluateResult {
  problems: number;
  strict: { correct: number; accuracy: number };
  match: { correct: number; accuracy: number };
  rounds: number;
  prompt: PromptStyle;
  generatedTokens: number;
  seconds: number;
  /** The JSONL written, when `out` was given. */
  out?: string;
  results: EvaluatedProblem[];
}

/** Greedy multi-round pass@1 of the model on a dataset, with the strict and the robust metric. */
export async function evaluate(model: RolloutModel, options: EvaluateOptions): Promise<EvaluateResult> {
  const prompt = options.prompt ?? 'motif';
  if (!['motif', 'grpo', 'base'].includes(prompt))
    throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', `evaluate: prompt must be motif, grpo or base, got '${prompt}'`);
  const rounds = prompt === 'motif' ? (options.rounds ?? 3) : 1;
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      `evaluate: rounds must be a positive integer, got ${options.rounds}`,
    );
  const maxTokens = options.maxTokens ?? 1024;
  const batchSize = options.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      `evaluate: batchSize must be a positive integer, got ${batchSize}`,
    );
  let rows =
    typeof options.dataset === 'string'
      ? (await loadDataset(options.dataset, options.datasetOptions)).data
      : [...options.dataset];
  if (options.limit !== undefined) rows = rows.slice(0, options.limit);
  if (rows.length === 0) throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', 'evaluate: the dataset has no rows');
  const settings = {
    prompt,
    rounds,
    samples: 1,
    trajectories: rounds > 1 ? 1 : 0,
    maxTokens,
    temperature: 0,
    topP: 1,
    continuationTemperature: 0,
    continuationTopP: 1,
    continuationPolicy: 'current' as const,
    templates: options.templates ?? DEFAULT_TEMPLATES,
  };
  const t0 = performance.now();
  const results: EvaluatedProblem[] = [];
  let generatedTokens = 0;
  for (let at = 0; at < rows.length; at += batchSize) {
    if (options.signal?.aborted) break;
    const batch = rows.slice(at, at + batchSize);
    const r = await rollout(
      model,
      batch.map((x) => x.question),
      settings,
      () => 0,
      options.signal,
    );
    generatedTokens += r.firstTokens + r.continuationTokens;
    batch.forEach((row, i) => {
      const first = r.first[i];
      if (!first) return;
      const texts = [first.text, ...(r.trajectories[i]?.[0] ?? [])];
      const final = texts[texts.length - 1] as string;
      results.push({
        id: row.id,
        question: row.question,
        reference: row.answer,
        rounds: texts,
        extracted: extractAnswer(final),
        strict: gradeResponse(final, row.answer, { metric: 'strict' }),
        match: gradeResponse(final, row.answer, { ...options.match, metric: 'match' }),
        firstRoundTokens: first.tokens.length,
        truncated: first.finishReason === 'length',
      });
    });
    options.onProgress?.(results.length, rows.length);
  }
  const strict = results.filter((x) => x.strict).length;
  const match = results.filter((x) => x.match).length;
  const n = results.length;
  const out: EvaluateResult = {
    problems: n,
    strict: { correct: strict, accuracy: n ? strict / n : 0 },
    match: { correct: match, accuracy: n ? match / n : 0 },
    rounds,
    prompt,
    generatedTokens,
    seconds: (performance.now() - t0) / 1000,
    results,
  };
  if (options.out !== undefined) {
    await writeFileAtomic(options.out, results.map((x) => `${JSON.stringify(x)}\n`).join(''));
    out.out = options.out;
  }
  return out;
}
