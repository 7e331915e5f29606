/**
 * test/helpers/torch-reference.ts — node:test helpers that drive the independent PyTorch reference
 * (test/reference/qwen2_ref.py) so engine tests can compare their logits with it.
 *
 * Needs Debian's PyTorch for /usr/bin/python3 (`apt-get install -y python3-torch`); set
 * MOTIF_TORCH_PYTHON to use another interpreter. Typical use in a test:
 *
 *   import { torchAvailable, makeRandomModel, referenceLogits, relativeL2 } from '../helpers/torch-reference.js';
 *   if (!torchAvailable()) { t.skip(torchSkipReason()); return; }
 *   const dir = await makeRandomModel({ arch: 'qwen2', hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 211 });
 *   const ref = await referenceLogits(dir, [[1, 2, 3], [4, 5]]);   // Float32Array [5 × 211]
 *   assert.ok(relativeL2(engineLogits, ref) <= 1e-4);
 *
 * Models go under test/.generated/ (git-ignored) unless a folder is given.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The repository root (test/helpers/../..). */
export const REPO_ROOT = path.resolve(HERE, '..', '..');
/** The reference script. */
export const REFERENCE_SCRIPT = path.join(REPO_ROOT, 'test', 'reference', 'qwen2_ref.py');
/** Where generated models go by default (git-ignored). */
export const GENERATED_DIR = path.join(REPO_ROOT, 'test', '.generated');
/** The interpreter that has Debian's python3-torch (not a pyenv/venv python3 that may come first on PATH). */
export const TORCH_PYTHON = process.env.MOTIF_TORCH_PYTHON ?? '/usr/bin/python3';

/** Subprocess limits: a reference forward of a small model takes seconds; big ones may take minutes. */
const EXEC_TIMEOUT_MS = 15 * 60 * 1000;
const EXEC_MAX_BUFFER = 64 * 1024 * 1024;

export type Arch = 'qwen2' | 'llama';
export type WeightDtype = 'f32' | 'bf16' | 'f16';

/** rope_scaling as written to config.json (HF keys), e.g. { rope_type: 'linear', factor: 2 }. */
export type RopeScaling =
  | { rope_type?: 'linear'; type?: 'linear'; factor: number }
  | {
      rope_type: 'llama3';
      factor: number;
      low_freq_factor: number;
      high_freq_factor: number;
      original_max_position_embeddings: number;
    };

export interface RandomModelOptions {
  arch: Arch;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  /** Written to config.json only when given; otherwise hidden / heads. */
  headDim?: number;
  vocab: number;
  /** tie_word_embeddings: no lm_head.weight, the LM head is embed_tokens. */
  tie?: boolean;
  /** Storage dtype of the weights (default f32). */
  dtype?: WeightDtype;
  /** Number of safetensors shards (default 1: a single model.safetensors). */
  shards?: number;
  seed?: number;
  ropeTheta?: number;
  ropeScaling?: RopeScaling | null;
  /** Llama only: bias on q, k, v and o. */
  attentionBias?: boolean;
  /** Llama only: bias on gate, up and down. */
  mlpBias?: boolean;
  rmsEps?: number;
  maxPos?: number;
  /** Multiplies the std of every random linear, embedding and bias (default 1). */
  scale?: number;
}

export interface ReferenceOptions {
  /** Precision of the reference computation (default f64). */
  compute?: 'f64' | 'f32';
}

let torchProbe: { ok: boolean; reason: string } | undefined;

function probeTorch(): { ok: boolean; reason: string } {
  if (torchProbe === undefined) {
    try {
      const version = execFileSync(TORCH_PYTHON, ['-c', 'import torch, numpy; print(torch.__version__)'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 120_000,
      }).trim();
      torchProbe = { ok: true, reason: `torch ${version} at ${TORCH_PYTHON}` };
    } catch (err) {
      const e = err as { stderr?: string | Buffer; message?: string };
      const detail =
        String(e.stderr ?? '')
          .trim()
          .split('\n')
          .pop() ||
        e.message ||
        'unknown error';
      torchProbe = {
        ok: false,
        reason: `${TORCH_PYTHON} cannot import torch (${detail}); install it with: apt-get install -y python3-torch`,
      };
    }
  }
  return torchProbe;
}

/** True when TORCH_PYTHON can `import torch` (probed once, then cached). */
export function torchAvailable(): boolean {
  return probeTorch().ok;
}

/** Why torch is (un)available, for a skip message. */
export function torchSkipReason(): string {
  return probeTorch().reason;
}

/** Runs the reference script; rejects with the command line and the Python stderr on failure. */
export function runReference(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      TORCH_PYTHON,
      [REFERENCE_SCRIPT, ...args],
      { cwd: REPO_ROOT, timeout: EXEC_TIMEOUT_MS, maxBuffer: EXEC_MAX_BUFFER, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) {
          const how = error.killed ? `killed (${error.signal ?? 'timeout'})` : `exit code ${String(error.code)}`;
          reject(
            new Error(
              `torch reference failed (${how}): ${TORCH_PYTHON} ${REFERENCE_SCRIPT} ${args.join(' ')}\n` +
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

function checkPositiveInt(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
    throw new Error(`makeRandomModel: ${name} must be a positive integer, got ${String(value)}`);
  }
}

function modelFolderPrefix(o: RandomModelOptions): string {
  const parts = [
    o.arch,
    `c${o.hidden}`,
    `l${o.layers}`,
    `h${o.heads}kv${o.kvHeads}`,
    o.headDim !== undefined ? `d${o.headDim}` : '',
    `v${o.vocab}`,
    o.tie ? 'tied' : '',
    o.dtype ?? 'f32',
    o.shards !== undefined && o.shards > 1 ? `s${o.shards}` : '',
  ];
  return `${parts.filter((p) => p !== '').join('-')}-`;
}

/**
 * Writes a random HuggingFace model folder with the reference's make-model and returns its path.
 * Without `dir`, a fresh folder under test/.generated/ (the caller may delete it when done).
 */
export async function makeRandomModel(opts: RandomModelOptions, dir?: string): Promise<string> {
  for (const key of ['hidden', 'intermediate', 'layers', 'heads', 'kvHeads', 'vocab'] as const) {
    checkPositiveInt(key, opts[key]);
  }
  checkPositiveInt('headDim', opts.headDim);
  checkPositiveInt('shards', opts.shards);
  checkPositiveInt('maxPos', opts.maxPos);
  let out = dir;
  if (out === undefined) {
    await mkdir(GENERATED_DIR, { recursive: true });
    out = await mkdtemp(path.join(GENERATED_DIR, modelFolderPrefix(opts)));
  }
  const args = [
    'make-model',
    '--out',
    out,
    '--arch',
    opts.arch,
    '--hidden',
    String(opts.hidden),
    '--intermediate',
    String(opts.intermediate),
    '--layers',
    String(opts.layers),
    '--heads',
    String(opts.heads),
    '--kv-heads',
    String(opts.kvHeads),
    '--vocab',
    String(opts.vocab),
    '--dtype',
    opts.dtype ?? 'f32',
    '--shards',
    String(opts.shards ?? 1),
    '--seed',
    String(opts.seed ?? 0),
  ];
  if (opts.headDim !== undefined) args.push('--head-dim', String(opts.headDim));
  if (opts.tie) args.push('--tie');
  if (opts.ropeTheta !== undefined) args.push('--rope-theta', String(opts.ropeTheta));
  if (opts.ropeScaling) args.push('--rope-scaling', JSON.stringify(opts.ropeScaling));
  if (opts.attentionBias) args.push('--attention-bias');
  if (opts.mlpBias) args.push('--mlp-bias');
  if (opts.rmsEps !== undefined) args.push('--rms-eps', String(opts.rmsEps));
  if (opts.maxPos !== undefined) args.push('--max-pos', String(opts.maxPos));
  if (opts.scale !== undefined) args.push('--scale', String(opts.scale));
  await runReference(args);
  return out;
}

/**
 * Reference logits for independent sequences (each starts at position 0 and attends only to itself):
 * a Float32Array [total tokens × vocab], row-major, sequences in order.
 */
export async function referenceLogits(
  dir: string,
  seqs: number[][],
  options: ReferenceOptions = {},
): Promise<Float32Array> {
  if (seqs.length === 0 || seqs.some((s) => s.length === 0)) {
    throw new Error('referenceLogits: need at least one sequence, and no empty sequence');
  }
  const flat = seqs.flat();
  for (const t of flat) {
    if (!Number.isInteger(t) || t < 0 || t > 0x7fffffff) {
      throw new Error(`referenceLogits: token ${String(t)} is not a non-negative int32`);
    }
  }
  const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as { vocab_size?: unknown };
  if (typeof config.vocab_size !== 'number') {
    throw new Error(`referenceLogits: ${path.join(dir, 'config.json')} has no numeric vocab_size`);
  }
  const vocab = config.vocab_size;
  const work = await mkdtemp(path.join(os.tmpdir(), 'motif-torch-ref-'));
  try {
    const tokensPath = path.join(work, 'tokens.i32');
    const outPath = path.join(work, 'logits.f32');
    const bytes = Buffer.alloc(flat.length * 4);
    for (let i = 0; i < flat.length; i++) bytes.writeInt32LE(flat[i], i * 4);
    await writeFile(tokensPath, bytes);
    await runReference([
      'forward',
      '--model',
      dir,
      '--tokens',
      tokensPath,
      '--seq-lens',
      seqs.map((s) => s.length).join(','),
      '--out',
      outPath,
      '--dtype-compute',
      options.compute ?? 'f64',
    ]);
    const raw = await readFile(outPath);
    const expected = flat.length * vocab * 4;
    if (raw.length !== expected) {
      throw new Error(
        `referenceLogits: ${outPath} has ${raw.length} bytes, expected ${expected} (${flat.length} × ${vocab} f32)`,
      );
    }
    const logits = new Float32Array(flat.length * vocab);
    for (let i = 0; i < logits.length; i++) logits[i] = raw.readFloatLE(i * 4);
    return logits;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** ‖a − b‖₂ / ‖b‖₂ with b the reference, accumulated in float64. NaN anywhere gives NaN. */
export function relativeL2(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) {
    throw new Error(`relativeL2: lengths differ (${a.length} vs ${b.length})`);
  }
  let diff = 0;
  let ref = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    diff += d * d;
    ref += b[i] * b[i];
  }
  if (ref === 0) return diff === 0 ? 0 : Number.POSITIVE_INFINITY;
  return Math.sqrt(diff / ref);
}
