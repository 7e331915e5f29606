/**
 * EvalCommand.ts — `motif-native eval --model DIR [--adapter DIR] --dataset FILE --rounds R [--limit N] [--out FILE]`:
 * greedy multi-round pass@1 (lib/train/evaluate.ts) with the paper's strict metric and the robust
 * grader, one JSON line per problem, and a summary on stdout.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { type DatasetKind, loadDataset } from '../../data/datasets.js';
import { type LoadModelOptions, loadModel } from '../../model/Model.js';
import { loadTemplates } from '../../motif/protocol.js';
import { invalidParameterError, MotifError } from '../../native/errors.js';
import { closeSymbolic } from '../../text/symbolic.js';
import { evaluate } from '../../train/evaluate.js';
import { loadAdapter } from '../../train/peft.js';
import type { PromptStyle, RolloutModel } from '../../train/rollout.js';
import { isTrainableModel } from '../../train/types.js';

interface EvalArgs {
  model: string;
  adapter?: string;
  dataset: string;
  'dataset-kind'?: string;
  'question-field'?: string;
  'answer-field'?: string;
  'id-field'?: string;
  rounds: number;
  prompt: string;
  limit?: number;
  out?: string;
  'max-tokens': number;
  'batch-size': number;
  templates?: string;
  symbolic: boolean;
  device: string;
  threads: number;
  'kv-cache-bytes'?: number;
  json: boolean;
  quiet: boolean;
}

/** What `eval` needs from outside (replaceable in tests). */
export interface EvalDeps {
  loadModel: (dir: string, options: LoadModelOptions) => Promise<unknown>;
}

function positiveInt(flag: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw invalidParameterError(flag, 'a positive integer', v);
}

/** The `eval` command's work. */
export async function runEval(argv: EvalArgs, deps: EvalDeps = { loadModel }): Promise<void> {
  positiveInt('--rounds', argv.rounds);
  positiveInt('--limit', argv.limit);
  positiveInt('--max-tokens', argv['max-tokens']);
  positiveInt('--batch-size', argv['batch-size']);
  positiveInt('--threads', argv.threads === 0 ? undefined : argv.threads);
  const templates = argv.templates !== undefined ? await loadTemplates(argv.templates) : undefined;
  const data = await loadDataset(argv.dataset, {
    kind: argv['dataset-kind'] as DatasetKind | undefined,
    questionField: argv['question-field'],
    answerField: argv['answer-field'],
    idField: argv['id-field'],
    limit: argv.limit,
  });
  const stem = path.basename(argv.dataset).replace(/\.[^.]*$/, '');
  const out =
    argv.out ?? path.join('runs', `eval-${stem}-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}.jsonl`);
  const model = await deps.loadModel(argv.model, {
    device: argv.device as LoadModelOptions['device'],
    threads: argv.threads,
    kvCacheBytes: argv['kv-cache-bytes'],
  });
  const dispose = async () => (model as { dispose?: () => Promise<void> }).dispose?.();
  try {
    if (argv.adapter !== undefined) {
      if (!isTrainableModel(model))
        throw new MotifError(
          'ERR_MOTIF_UNSUPPORTED',
          'this build of the engine cannot apply LoRA adapters yet; evaluate the base model (no --adapter) or a merged model',
        );
      await loadAdapter(model, argv.adapter);
    }
    await mkdir(path.dirname(path.resolve(out)), { recursive: true });
    const tty = process.stderr.isTTY === true && !argv.quiet;
    const r = await evaluate(model as RolloutModel, {
      dataset: data.data,
      rounds: argv.rounds,
      prompt: argv.prompt as PromptStyle,
      maxTokens: argv['max-tokens'],
      batchSize: argv['batch-size'],
      templates,
      out,
      match: { symbolic: argv.symbolic },
      onProgress: (done, total) => {
        if (argv.quiet) return;
        process.stderr.write(tty ? `\reval ${done}/${total}` : `eval ${done}/${total}\n`);
      },
    });
    if (tty) process.stderr.write('\n');
    const { results: _r, ...summary } = r;
    if (argv.json) {
      console.log(
        JSON.stringify(
          { dataset: argv.dataset, model: argv.model, adapter: argv.adapter ?? null, ...summary },
          null,
          2,
        ),
      );
      return;
    }
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    console.log(`${r.problems} problems, ${r.rounds} round(s), greedy, prompt ${r.prompt}`);
    console.log(
      `pass@1 strict (\\boxed{ref} in the final response): ${pct(r.strict.accuracy)} (${r.strict.correct}/${r.problems})`,
    );
    console.log(
      `pass@1 match  (extracted answer, robust grader):     ${pct(r.match.accuracy)} (${r.match.correct}/${r.problems})`,
    );
    console.log(`${r.generatedTokens} tokens in ${r.seconds.toFixed(1)} s; per-problem results: ${out}`);
  } finally {
    await dispose();
    await closeSymbolic();
  }
}

/** The `eval` command (register it in cli.ts). */
export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval',
  describe: 'Greedy multi-round pass@1 of a model (and adapter) on a dataset, strict and robust metrics',
  builder: (y) =>
    y
      .option('model', {
        type: 'string',
        demandOption: true,
        describe: 'HuggingFace model folder (with tokenizer.json and a chat template)',
      })
      .option('adapter', { type: 'string', describe: 'PEFT LoRA adapter folder to apply (ours or HF PEFT)' })
      .option('dataset', {
        type: 'string',
        demandOption: true,
        describe: 'JSONL or Parquet file of problems (GSM8K, MATH-500, AIME, generic)',
      })
      .option('dataset-kind', {
        type: 'string',
        choices: ['gsm8k', 'math', 'math500', 'aime', 'generic'],
        describe: 'Row layout (default: guessed from the path)',
      })
      .option('question-field', { type: 'string', describe: 'Field holding the question' })
      .option('answer-field', { type: 'string', describe: 'Field holding the reference answer' })
      .option('id-field', { type: 'string', describe: 'Field holding a row id' })
      .option('rounds', { type: 'number', default: 3, describe: 'Rounds R of the MOTIF protocol (1: single round)' })
      .option('prompt', {
        type: 'string',
        default: 'motif',
        choices: ['motif', 'grpo', 'base'],
        describe:
          'First-round prompt: MOTIF protocol, the GRPO baseline format, or a plain boxed-answer prompt (grpo/base: one round)',
      })
      .option('limit', { type: 'number', describe: 'Evaluate the first N problems only' })
      .option('out', {
        type: 'string',
        describe: 'Per-problem JSONL to write (default runs/eval-<dataset>-<time>.jsonl)',
      })
      .option('max-tokens', { type: 'number', default: 1024, describe: 'Tokens a round, at most' })
      .option('batch-size', { type: 'number', default: 64, describe: 'Problems per generate call' })
      .option('templates', { type: 'string', describe: 'JSON file overriding prompt templates' })
      .option('symbolic', {
        type: 'boolean',
        default: true,
        describe: 'Let the robust grader try symbolic equality (--no-symbolic: off)',
      })
      .option('device', { type: 'string', default: 'auto', choices: ['auto', 'cpu', 'cuda'] })
      .option('threads', { type: 'number', default: 0, describe: 'CPU threads (0 = all)' })
      .option('kv-cache-bytes', { type: 'number', describe: 'Memory of the KV cache in bytes' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the summary as one JSON object' })
      .option('quiet', { type: 'boolean', default: false, describe: 'No progress output' })
      .example(
        '$0 eval --model DIR --adapter runs/motif-x/adapter --dataset ../shared/data/math500/test.jsonl --rounds 3',
        '',
      ) as Argv<EvalArgs>,
  handler: async (argv) => runEval(argv),
};
