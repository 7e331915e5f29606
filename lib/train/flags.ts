/**
 * flags.ts — the `train` command's settings as a table: each flag's type, default (the paper's, from
 * DESIGN.md §4), help text and the TrainConfig key it sets; reading `--config file.json`; and merging
 * command line > config file > the resumed run's manifest > defaults into a checked TrainConfig whose
 * errors name the flag. Kept apart from the yargs command (lib/cli/commands/TrainCommand.ts) so the
 * table is the one place a setting is described.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { MotifError } from '../native/errors.js';
import { DEFAULT_TRAIN_CONFIG, resolveTrainConfig, type TrainConfig } from './config.js';
import { MANIFEST } from './run-dir.js';
import { LORA_TARGETS } from './types.js';

/** A flag's value type. */
export type FlagType = 'string' | 'number' | 'boolean';

/** One flag: its type, default, help, and (for training settings) the TrainConfig key it sets. */
export interface Flag {
  name: string;
  type: FlagType;
  group: string;
  describe: string;
  default?: unknown;
  choices?: readonly string[];
  /** The TrainConfig setting (dotted for lora.*). */
  key?: string;
}

const D = DEFAULT_TRAIN_CONFIG;
const G_DATA = 'Model and data:';
const G_METHOD = 'Method (MOTIF / GRPO):';
const G_LORA = 'LoRA:';
const G_OPT = 'Optimization:';
const G_LOSS = 'Loss:';
const G_REWARD = 'Rewards and prompts:';
/** Help group of the run-folder flags (the command adds --config to it). */
export const G_RUN = 'Run folder:';
const G_ENGINE = 'Engine:';

/** The flags of `train`, with the paper's defaults (DESIGN.md §4). */
export const TRAIN_FLAGS: readonly Flag[] = [
  {
    name: 'model',
    type: 'string',
    group: G_DATA,
    describe: 'HuggingFace Qwen2/Llama folder (config.json, safetensors, tokenizer.json with a chat template)',
  },
  {
    name: 'dataset',
    type: 'string',
    group: G_DATA,
    describe: 'Training questions: a JSONL or Parquet file (GSM8K, MATH, AIME or generic rows)',
  },
  {
    name: 'dataset-kind',
    type: 'string',
    group: G_DATA,
    choices: ['gsm8k', 'math', 'math500', 'aime', 'generic'],
    describe: 'Row layout (default: guessed from the file path)',
  },
  {
    name: 'question-field',
    type: 'string',
    group: G_DATA,
    describe: "Field holding the question (default 'question'; 'problem' for math/aime)",
  },
  {
    name: 'answer-field',
    type: 'string',
    group: G_DATA,
    describe: "Field holding the reference answer (default 'answer')",
  },
  {
    name: 'id-field',
    type: 'string',
    group: G_DATA,
    describe: "Field holding a row id (default 'id'; 'unique_id' for math)",
  },
  { name: 'limit', type: 'number', group: G_DATA, describe: 'Use only the first N rows of the file' },
  {
    name: 'eval-size',
    type: 'number',
    group: G_DATA,
    default: D.evalSize,
    key: 'evalSize',
    describe: 'Hold out N questions (or a fraction < 1) from training and evaluate them at the end (eval.jsonl)',
  },
  {
    name: 'method',
    type: 'string',
    group: G_METHOD,
    default: D.method,
    key: 'method',
    choices: ['motif', 'grpo'],
    describe: 'motif: multi-round future-accuracy reward; grpo: single-round baseline',
  },
  {
    name: 'rounds',
    type: 'number',
    group: G_METHOD,
    default: D.rounds,
    key: 'rounds',
    describe: 'Rounds R of the MOTIF protocol (grpo: 1)',
  },
  {
    name: 'num-generations',
    type: 'number',
    group: G_METHOD,
    default: D.numGenerations,
    key: 'numGenerations',
    describe: 'm: first-round samples per question (the GRPO group, >= 2)',
  },
  {
    name: 'trajectories',
    type: 'number',
    group: G_METHOD,
    default: D.trajectories,
    key: 'trajectories',
    describe: 'k: continuations through rounds 2..R of each first-round sample',
  },
  {
    name: 'continuation-policy',
    type: 'string',
    group: G_METHOD,
    default: D.continuationPolicy,
    key: 'continuationPolicy',
    choices: ['current', 'base'],
    describe:
      "Continuations sample from the adapter being trained ('current') or without it ('base', as the official code)",
  },
  {
    name: 'max-tokens',
    type: 'number',
    group: G_METHOD,
    default: D.maxTokens,
    key: 'maxTokens',
    describe: 'Tokens a round, at most',
  },
  {
    name: 'temperature',
    type: 'number',
    group: G_METHOD,
    default: D.temperature,
    key: 'temperature',
    describe: 'First-round sampling temperature (also divides the logits in the loss)',
  },
  {
    name: 'top-p',
    type: 'number',
    group: G_METHOD,
    default: D.topP,
    key: 'topP',
    describe: 'First-round nucleus sampling mass',
  },
  {
    name: 'continuation-temperature',
    type: 'number',
    group: G_METHOD,
    default: D.continuationTemperature,
    key: 'continuationTemperature',
    describe: 'Sampling temperature of rounds 2..R',
  },
  {
    name: 'continuation-top-p',
    type: 'number',
    group: G_METHOD,
    default: D.continuationTopP,
    key: 'continuationTopP',
    describe: 'Nucleus sampling mass of rounds 2..R',
  },
  { name: 'lora-r', type: 'number', group: G_LORA, default: D.lora.rank, key: 'lora.rank', describe: 'LoRA rank r' },
  {
    name: 'lora-alpha',
    type: 'number',
    group: G_LORA,
    default: D.lora.alpha,
    key: 'lora.alpha',
    describe: 'LoRA alpha (updates scaled by alpha / r)',
  },
  {
    name: 'lora-targets',
    type: 'string',
    group: G_LORA,
    default: LORA_TARGETS.join(','),
    key: 'lora.targets',
    describe: 'Projections to adapt, comma-separated',
  },
  {
    name: 'rslora',
    type: 'boolean',
    group: G_LORA,
    default: D.lora.rslora,
    key: 'lora.rslora',
    describe: 'rsLoRA scaling alpha / sqrt(r)',
  },
  { name: 'steps', type: 'number', group: G_OPT, default: D.steps, key: 'steps', describe: 'Optimizer steps' },
  {
    name: 'batch-size',
    type: 'number',
    group: G_OPT,
    default: D.batchSize,
    key: 'batchSize',
    describe: 'Questions per micro-batch (each rolled out with m x k samples)',
  },
  {
    name: 'grad-accum',
    type: 'number',
    group: G_OPT,
    default: D.gradAccum,
    key: 'gradAccum',
    describe: 'Micro-batches per optimizer step (gradient accumulation)',
  },
  {
    name: 'lr',
    type: 'number',
    group: G_OPT,
    default: D.lr,
    key: 'lr',
    describe: 'Peak learning rate (cosine schedule with warmup, to 0)',
  },
  { name: 'beta1', type: 'number', group: G_OPT, default: D.beta1, key: 'beta1', describe: 'AdamW beta1' },
  { name: 'beta2', type: 'number', group: G_OPT, default: D.beta2, key: 'beta2', describe: 'AdamW beta2' },
  { name: 'adam-eps', type: 'number', group: G_OPT, default: D.adamEps, key: 'adamEps', describe: 'AdamW epsilon' },
  {
    name: 'weight-decay',
    type: 'number',
    group: G_OPT,
    default: D.weightDecay,
    key: 'weightDecay',
    describe: 'AdamW weight decay (decoupled)',
  },
  {
    name: 'warmup-ratio',
    type: 'number',
    group: G_OPT,
    default: D.warmupRatio,
    key: 'warmupRatio',
    describe: 'Warmup steps as a fraction of --steps (rounded up)',
  },
  {
    name: 'max-grad-norm',
    type: 'number',
    group: G_OPT,
    default: D.maxGradNorm,
    key: 'maxGradNorm',
    describe: 'Global gradient-norm clipping (0: none)',
  },
  {
    name: 'loss-type',
    type: 'string',
    group: G_LOSS,
    default: D.lossType,
    key: 'lossType',
    choices: ['grpo', 'bnpo', 'dr_grpo'],
    describe: "TRL's GRPO loss normalization",
  },
  {
    name: 'epsilon',
    type: 'number',
    group: G_LOSS,
    default: D.epsilon,
    key: 'epsilon',
    describe: 'Importance-ratio clipping: [1 - epsilon, 1 + epsilon-high]',
  },
  {
    name: 'epsilon-high',
    type: 'number',
    group: G_LOSS,
    key: 'epsilonHigh',
    describe: 'Upper clipping epsilon (default: --epsilon)',
  },
  {
    name: 'beta',
    type: 'number',
    group: G_LOSS,
    default: D.beta,
    key: 'beta',
    describe: 'KL coefficient against the base model (0: no reference pass)',
  },
  {
    name: 'scale-rewards',
    type: 'string',
    group: G_LOSS,
    default: D.scaleRewards,
    key: 'scaleRewards',
    choices: ['group', 'batch', 'none'],
    describe: 'Advantages (r - group mean) divided by the group std, the batch std, or nothing',
  },
  {
    name: 'drop-constant-groups',
    type: 'boolean',
    group: G_LOSS,
    default: D.dropConstantGroups,
    key: 'dropConstantGroups',
    describe: 'Leave out groups whose rewards are all equal (no gradient signal)',
  },
  {
    name: 'reward-module',
    type: 'string',
    group: G_REWARD,
    key: 'rewardModule',
    describe: 'JS module of extra rewards (functions of the batch, or { name, weight, score })',
  },
  {
    name: 'builtin-rewards',
    type: 'boolean',
    group: G_REWARD,
    default: D.builtinRewards,
    key: 'builtinRewards',
    describe: 'Use the official rewards (motif: outcome + xmlcount + soft/strict format; grpo: format + correctness)',
  },
  {
    name: 'reward-metric',
    type: 'string',
    group: G_REWARD,
    default: D.rewardMetric,
    key: 'rewardMetric',
    choices: ['strict', 'match'],
    describe: "Answer check: the paper's \\boxed{ref} substring, or the robust grader",
  },
  {
    name: 'templates',
    type: 'string',
    group: G_REWARD,
    key: 'templatesFile',
    describe: 'JSON file overriding prompt templates (system, user, progress, finalRound, ...)',
  },
  { name: 'run-dir', type: 'string', group: G_RUN, describe: 'Run folder (default runs/<method>-<date>-<time>)' },
  {
    name: 'resume',
    type: 'boolean',
    group: G_RUN,
    default: false,
    describe: "Continue --run-dir from its latest checkpoint (settings default to the run's)",
  },
  {
    name: 'save-every',
    type: 'number',
    group: G_RUN,
    default: D.saveEvery,
    key: 'saveEvery',
    describe: 'Checkpoint every N steps (and at the last)',
  },
  {
    name: 'samples-per-step',
    type: 'number',
    group: G_RUN,
    default: D.samplesPerStep,
    key: 'samplesPerStep',
    describe: 'Trajectories written to samples.jsonl per step',
  },
  {
    name: 'seed',
    type: 'number',
    group: G_RUN,
    default: D.seed,
    key: 'seed',
    describe: 'Seed of the LoRA init, the data order and the sampling',
  },
  { name: 'quiet', type: 'boolean', group: G_RUN, default: false, describe: 'No progress bar' },
  {
    name: 'device',
    type: 'string',
    group: G_ENGINE,
    default: 'auto',
    choices: ['auto', 'cpu', 'cuda'],
    describe: 'Where to run',
  },
  { name: 'threads', type: 'number', group: G_ENGINE, default: 0, describe: 'CPU threads (0: all)' },
  {
    name: 'kv-cache-bytes',
    type: 'number',
    group: G_ENGINE,
    describe: 'Memory of the rollout KV cache in bytes (default: a quarter of free memory, 64 MiB-4 GiB)',
  },
];

const BY_NAME = new Map(TRAIN_FLAGS.map((f) => [f.name, f]));
const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const BY_CAMEL = new Map(TRAIN_FLAGS.map((f) => [camel(f.name), f]));
const BY_KEY = new Map(TRAIN_FLAGS.filter((f) => f.key).map((f) => [f.key as string, f]));

function usage(message: string): MotifError {
  return new MotifError('ERR_MOTIF_INVALID_ARGUMENT', message);
}

/** Checks one value of a flag (from the command line or a file) and normalizes lists. */
function checkValue(f: Flag, v: unknown, where: string): unknown {
  if (f.name === 'lora-targets' && Array.isArray(v)) v = v.join(',');
  if (f.type === 'number' && (typeof v !== 'number' || Number.isNaN(v)))
    throw usage(`${where}: expected a number, got ${JSON.stringify(v)}`);
  if (f.type === 'string' && typeof v !== 'string')
    throw usage(`${where}: expected a string, got ${JSON.stringify(v)}`);
  if (f.type === 'boolean' && typeof v !== 'boolean')
    throw usage(`${where}: expected true or false, got ${JSON.stringify(v)}`);
  if (f.choices && !f.choices.includes(v as string))
    throw usage(`${where}: expected one of ${f.choices.join(', ')}, got ${JSON.stringify(v)}`);
  return v;
}

/** Reads `--config FILE` (JSON; keys are flag names, kebab-case or camelCase). */
export async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  if (/\.ya?ml$/i.test(file))
    throw usage(
      `${file}: YAML config files need a YAML parser, which this installation does not include; write the settings as JSON (the same keys)`,
    );
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new MotifError(
      'ERR_MOTIF_IO',
      `${file}: cannot read the config file (${(err as NodeJS.ErrnoException).code})`,
    );
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (err) {
    throw new MotifError('ERR_MOTIF_FORMAT', `${file}: not valid JSON (${(err as Error).message})`);
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj))
    throw new MotifError('ERR_MOTIF_FORMAT', `${file}: expected a JSON object of settings`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    const f = BY_NAME.get(k) ?? BY_CAMEL.get(k);
    if (!f || f.name === 'resume')
      throw usage(`${file}: unknown setting "${k}" (the keys are train's flag names; see motif-native train --help)`);
    if (v !== null) out[f.name] = checkValue(f, v, `${file}: "${k}"`);
  }
  return out;
}

/** The settings of a train invocation, merged: command line > config file > the resumed run's > defaults. */
export interface TrainValues {
  values: Record<string, unknown>;
  config: TrainConfig;
}

function stamp(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** Builds the trainer's settings from the parsed flags (validated; errors name the flag). */
export async function resolveTrainValues(argv: Record<string, unknown>): Promise<TrainValues> {
  const cli: Record<string, unknown> = {};
  for (const f of TRAIN_FLAGS) if (argv[f.name] !== undefined) cli[f.name] = checkValue(f, argv[f.name], `--${f.name}`);
  const file = typeof argv.config === 'string' ? await readConfigFile(argv.config) : {};
  const resume = (cli.resume ?? false) === true;
  let fromRun: Record<string, unknown> = {};
  const runDir = (cli['run-dir'] ?? file['run-dir']) as string | undefined;
  if (resume) {
    if (runDir === undefined) throw usage('--resume needs --run-dir (the folder of the run to continue)');
    const text = await readFile(path.join(runDir, MANIFEST), 'utf8').catch(() => undefined);
    if (text !== undefined) {
      try {
        fromRun = ((JSON.parse(text) as { cli?: Record<string, unknown> }).cli ?? {}) as Record<string, unknown>;
      } catch {
        throw new MotifError('ERR_MOTIF_FORMAT', `${path.join(runDir, MANIFEST)}: not valid JSON`);
      }
    }
  }
  const values: Record<string, unknown> = {};
  for (const f of TRAIN_FLAGS) {
    const v =
      cli[f.name] ??
      file[f.name] ??
      (f.name === 'resume' || f.name === 'quiet' ? undefined : fromRun[f.name]) ??
      f.default;
    if (v !== undefined) values[f.name] = v;
  }
  values['run-dir'] ??= path.join('runs', `${values.method}-${stamp()}`);
  const partial: Record<string, unknown> = { lora: {} };
  for (const f of TRAIN_FLAGS) {
    if (!f.key || values[f.name] === undefined) continue;
    let v = values[f.name];
    if (f.key === 'lora.targets')
      v = String(v)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    if (f.key.startsWith('lora.')) (partial.lora as Record<string, unknown>)[f.key.slice(5)] = v;
    else partial[f.key] = v;
  }
  let config: TrainConfig;
  try {
    config = resolveTrainConfig(partial as Partial<TrainConfig>);
  } catch (err) {
    const message = (err as Error).message;
    const key = /^([\w.]+): /.exec(message)?.[1] ?? '';
    const flag = BY_KEY.get(key);
    if (flag) throw usage(`--${flag.name}${message.slice(key.length)}`);
    throw err;
  }
  return { values, config };
}
