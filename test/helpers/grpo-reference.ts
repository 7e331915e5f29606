/**
 * test/helpers/grpo-reference.ts — node:test helpers that drive the independent PyTorch reference for LoRA
 * training (test/reference/grpo_ref.py): PEFT adapter folders, and TRL's GRPO loss with its LoRA gradients
 * by autograd (float64 by default), so engine tests can compare `lossAndGradients` with it.
 *
 * Needs Debian's PyTorch for /usr/bin/python3 (see torch-reference.ts; MOTIF_TORCH_PYTHON overrides).
 * Typical use in a test:
 *
 *   import { makeRandomModel, torchAvailable, torchSkipReason } from '../helpers/torch-reference.js';
 *   import { makeAdapter, referenceLossGrads } from '../helpers/grpo-reference.js';
 *   if (!torchAvailable()) { t.skip(torchSkipReason()); return; }
 *   const model = await makeRandomModel({ arch: 'qwen2', hidden: 32, intermediate: 48, layers: 2, heads: 4, kvHeads: 2, vocab: 64 });
 *   const adapter = await makeAdapter(model, { rank: 4, alpha: 8, bScale: 0.1, seed: 1 });
 *   const ref = await referenceLossGrads(model, adapter, { promptIds: [[1, 2]], completionIds: [[3, 4], [5]],
 *     rewards: [1, 0], groupSize: 2, lossType: 'grpo', epsilon: 0.2, beta: 0.04, temperature: 0.8 });
 *   ref.grads.get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');  // Float32Array [r × in]
 *
 * Adapters go under test/.generated/ (git-ignored) unless a folder is given.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GENERATED_DIR, type RandomModelOptions, REPO_ROOT, TORCH_PYTHON } from './torch-reference.js';

/** The two small models training is checked on: Qwen2 with GQA (q/k/v biases) and Llama with every bias. */
export function referenceTestModels(vocab: number): Array<[string, RandomModelOptions]> {
  return [
    ['qwen2 GQA 2', { arch: 'qwen2', hidden: 32, intermediate: 48, layers: 2, heads: 4, kvHeads: 2, vocab, seed: 3 }],
    [
      'llama with biases',
      {
        arch: 'llama',
        hidden: 24,
        intermediate: 40,
        layers: 2,
        heads: 3,
        kvHeads: 1,
        vocab,
        attentionBias: true,
        mlpBias: true,
        seed: 4,
      },
    ],
  ];
}

/** The training reference script. */
export const GRPO_REFERENCE_SCRIPT = path.join(REPO_ROOT, 'test', 'reference', 'grpo_ref.py');

const EXEC_TIMEOUT_MS = 15 * 60 * 1000;
const EXEC_MAX_BUFFER = 64 * 1024 * 1024;

export type LoraTarget = 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj';

export interface AdapterOptions {
  rank: number;
  alpha: number;
  /** Projections to adapt (default all seven). */
  targets?: LoraTarget[];
  /** rsLoRA: scale alpha / sqrt(r) instead of alpha / r. */
  rslora?: boolean;
  seed?: number;
  /** B ~ N(0, bScale²) instead of PEFT's zeros, so the gradients of A are not all zero (default 0). */
  bScale?: number;
}

/** The batch of `lossAndGradients` (camelCase, as grpo_ref.py reads it). */
export interface GrpoReferenceBatch {
  /** One prompt per group (completion i uses promptIds[i / groupSize]) or one per completion. */
  promptIds: number[][];
  completionIds: number[][];
  /** One per completion; may be left out when `advantages` is given. */
  rewards?: number[];
  groupSize: number;
  /** 'sft': the mean negative log-likelihood of the completion tokens (rewards, epsilon, beta ignored). */
  lossType: 'grpo' | 'bnpo' | 'dr_grpo' | 'sft';
  epsilon: number;
  /** Upper clip (default epsilon). */
  epsilonHigh?: number;
  beta: number;
  temperature: number;
  /** dr_grpo's constant denominator (default: the longest completion). */
  maxCompletionLength?: number;
  scaleRewards?: 'group' | 'batch' | 'none';
  /** Sampling log-probs per completion token (default: the current log-probs, detached). */
  oldLogps?: number[][];
  /** Reference log-probs per completion token (default: the adapter disabled, when beta > 0). */
  refLogps?: number[][];
  /** Overrides the advantages computed from the rewards. */
  advantages?: number[];
}

export interface ReferenceLossGrads {
  loss: number;
  /** PEFT tensor name → gradient, row-major ([r × in] for lora_A, [out × r] for lora_B), names sorted. */
  grads: Map<string, Float32Array>;
  /** Current per-token log-probs of each completion. */
  logps: number[][];
  advantages: number[];
  /** Fraction of completion tokens where the clipped term was the (strictly) smaller one. */
  clipFraction: number;
  /** Mean per-token k3 KL to the reference (0 when beta is 0). */
  kl: number;
}

export interface LossGradsOptions {
  /** Precision of the reference computation (default f64). */
  dtype?: 'f64' | 'f32';
}

/** Runs grpo_ref.py; rejects with the command line and the Python stderr on failure. */
export function runGrpoReference(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      TORCH_PYTHON,
      [GRPO_REFERENCE_SCRIPT, ...args],
      { cwd: REPO_ROOT, timeout: EXEC_TIMEOUT_MS, maxBuffer: EXEC_MAX_BUFFER, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) {
          const how = error.killed ? `killed (${error.signal ?? 'timeout'})` : `exit code ${String(error.code)}`;
          reject(
            new Error(
              `grpo reference failed (${how}): ${TORCH_PYTHON} ${GRPO_REFERENCE_SCRIPT} ${args.join(' ')}\n` +
                `--- python stderr ---\n${stderr.trim() || '(empty)'}\n--- python stdout ---\n${stdout.trim() || '(empty)'}`,
            ),
          );
          return;
        }
        resolve({ stdout, stderr });
      },
    );
  });
}

/**
 * Writes a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors, F32) for the model in
 * `modelDir` and returns its path. Without `outDir`, a fresh folder under test/.generated/.
 */
export async function makeAdapter(modelDir: string, opts: AdapterOptions, outDir?: string): Promise<string> {
  if (!(Number.isInteger(opts.rank) && opts.rank > 0)) {
    throw new Error(`makeAdapter: rank must be a positive integer, got ${String(opts.rank)}`);
  }
  if (!Number.isFinite(opts.alpha)) throw new Error(`makeAdapter: alpha must be a number, got ${String(opts.alpha)}`);
  let out = outDir;
  if (out === undefined) {
    await mkdir(GENERATED_DIR, { recursive: true });
    out = await mkdtemp(path.join(GENERATED_DIR, `adapter-r${opts.rank}-`));
  }
  const args = [
    'make-adapter',
    '--model',
    modelDir,
    '--out',
    out,
    '--rank',
    String(opts.rank),
    '--alpha',
    String(opts.alpha),
    '--seed',
    String(opts.seed ?? 0),
    '--b-scale',
    String(opts.bScale ?? 0),
  ];
  if (opts.targets !== undefined) args.push('--targets', opts.targets.join(','));
  if (opts.rslora) args.push('--rslora');
  await runGrpoReference(args);
  return out;
}

interface RawResult {
  loss: number;
  grads: Record<string, number[]>;
  logps: number[][];
  advantages: number[];
  clipFraction: number;
  kl: number;
}

/**
 * TRL's GRPO loss (or the 'sft' mean NLL) and its gradients for `batch`, by PyTorch autograd: the LoRA
 * gradients under PEFT names (base weights frozen), or with `adapterDir` null (full-parameter training)
 * the gradient of every base weight under its HF name.
 */
export async function referenceLossGrads(
  modelDir: string,
  adapterDir: string | null,
  batch: GrpoReferenceBatch,
  options: LossGradsOptions = {},
): Promise<ReferenceLossGrads> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'motif-grpo-ref-'));
  try {
    const batchPath = path.join(work, 'batch.json');
    const outPath = path.join(work, 'out.json');
    await writeFile(batchPath, JSON.stringify(batch));
    await runGrpoReference([
      'loss-grads',
      '--model',
      modelDir,
      ...(adapterDir === null ? ['--full'] : ['--adapter', adapterDir]),
      '--batch',
      batchPath,
      '--out',
      outPath,
      '--dtype',
      options.dtype ?? 'f64',
    ]);
    const raw = JSON.parse(await readFile(outPath, 'utf8')) as RawResult;
    const grads = new Map<string, Float32Array>();
    for (const [name, values] of Object.entries(raw.grads)) grads.set(name, Float32Array.from(values));
    return {
      loss: raw.loss,
      grads,
      logps: raw.logps,
      advantages: raw.advantages,
      clipFraction: raw.clipFraction,
      kl: raw.kl,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
