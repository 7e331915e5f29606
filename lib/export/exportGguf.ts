/**
 * exportGguf.ts — converts a HuggingFace Qwen2 / Llama model folder to one GGUF file that llama.cpp
 * (and ollama, node-llama-cpp) loads: `exportGguf({ modelDir, outFile, dtype })`.
 *
 * What llama.cpp expects, following its converter (convert_hf_to_gguf.py) and gguf-py constants:
 * - metadata: general.architecture = qwen2 | llama and the architecture's hyper-parameters
 *   (<arch>.context_length, embedding_length, block_count, feed_forward_length, attention.head_count,
 *   attention.head_count_kv, attention.layer_norm_rms_epsilon, rope.freq_base, rope.dimension_count,
 *   attention.key_length/value_length when head_dim is not hidden/heads); rope scaling: linear as
 *   rope.scaling.type/factor, llama3 as a `rope_freqs.weight` tensor of per-frequency divisors;
 * - tensor names token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
 *   ffn_gate, ffn_up, ffn_down} (+ .bias), output_norm, output (absent when tied: llama.cpp reuses
 *   token_embd);
 * - for LlamaForCausalLM only, q_proj and k_proj rows (weights and biases) permuted within each head
 *   from HF's rotate-half RoPE layout to the interleaved-pairs layout of llama.cpp's LLAMA rope
 *   (Qwen2 uses NEOX rope, which is rotate-half: no permutation). llama.cpp's qwen2 needs
 *   heads * head_dim == hidden, so a Qwen2 with another head_dim is written as llama (permuted, with
 *   its q/k/v biases): the same computation;
 * - 1-D tensors (norms, biases) in F32 whatever the requested dtype, like the converter;
 * - a tokenizer: tokenizer.json's byte-level BPE as tokenizer.ggml.model = gpt2 (tokens, token_type,
 *   merges, pre = qwen2 | llama-bpe, special token ids, add_bos, chat_template), or, for a folder
 *   without tokenizer.json, a placeholder vocabulary llama.cpp accepts (byte tokens, filler tokens,
 *   an <|endoftext|> control token as EOS) so weights-only folders (benchmarks, tests) still load.
 *
 * Tensors are streamed from safetensors in chunks (converted f32/f16/bf16 with round-to-nearest-even)
 * and the file is written under a temporary name, then renamed: a failed export leaves no partial file.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { convertFloats, FLOAT_DTYPE_BYTES, type FloatDtype } from '../formats/dtypes.js';
import { type GgmlTypeName, GgufFileWriter, type GgufTensorDescriptor, type GgufValue, gguf } from '../formats/gguf.js';
import { openSafetensorsModel, type SafetensorsModel, type SafetensorsTensor } from '../formats/safetensors.js';
import { invalidParameterError, MotifError } from '../native/errors.js';

export type ExportDtype = 'f32' | 'f16' | 'bf16';

/** Progress of an export, reported after each chunk of tensor data is written. */
export interface ExportProgress {
  /** GGUF name of the tensor being written. */
  tensor: string;
  /** Index of that tensor (0-based) and the tensor count. */
  tensorIndex: number;
  tensorCount: number;
  /** Bytes of tensor data written so far, and in all. */
  bytesWritten: number;
  totalBytes: number;
}

export interface ExportGgufOptions {
  /** A HuggingFace model folder: config.json + model.safetensors (or sharded), tokenizer files optional. */
  modelDir: string;
  /** The .gguf file to write (replaced atomically when it exists). */
  outFile: string;
  /** Precision of the 2-D weights; default: the dtype of the checkpoint's embedding (f32, f16 or bf16). */
  dtype?: ExportDtype;
  /** Called as tensor data is written. */
  onProgress?: (p: ExportProgress) => void;
}

export interface ExportGgufResult {
  outFile: string;
  /** general.architecture written (a Qwen2 checkpoint whose head_dim is not hidden/heads is written as llama). */
  architecture: 'qwen2' | 'llama';
  dtype: ExportDtype;
  tensorCount: number;
  fileBytes: number;
  /** 'tokenizer.json' when the vocabulary came from the folder, 'placeholder' otherwise. */
  tokenizer: 'tokenizer.json' | 'placeholder';
  /** Tensors of the checkpoint that were not exported (e.g. rotary_emb.inv_freq buffers). */
  skippedTensors: string[];
}

/** config.json, read the way the native engine reads it (native/model/config.cpp). */
export interface ExportModelConfig {
  arch: 'qwen2' | 'llama';
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  headDimExplicit: boolean;
  vocab: number;
  maxPositions: number;
  rmsEps: number;
  ropeTheta: number;
  tie: boolean;
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  rope:
    | { type: 'none' }
    | { type: 'linear'; factor: number }
    | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };
  raw: Record<string, unknown>;
}

const DTYPES: readonly string[] = ['f32', 'f16', 'bf16'];
const CHUNK_BYTES = 8 * 2 ** 20;

/** GGUF token types (llama.cpp's llama_token_type / gguf-py TokenType). */
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** general.file_type (llama_ftype) of each export dtype. */
const FILE_TYPE: Record<ExportDtype, number> = { f32: 0, f16: 1, bf16: 32 };

function formatError(message: string): MotifError {
  return new MotifError('ERR_MOTIF_FORMAT', message);
}

async function readJsonFile(file: string, what: string, required: true): Promise<Record<string, unknown>>;
async function readJsonFile(file: string, what: string, required: false): Promise<Record<string, unknown> | undefined>;
async function readJsonFile(
  file: string,
  what: string,
  required: boolean,
): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (!required && e.code === 'ENOENT') return undefined;
    throw new MotifError(
      'ERR_MOTIF_IO',
      `${file}: cannot read ${what} (${e.code === 'ENOENT' ? 'no such file' : e.message})`,
      { cause: err },
    );
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw formatError(`${file}: ${what} is not valid JSON (${(err as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw formatError(`${file}: ${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

/** Parses config.json with the engine's rules and defaults; errors name the file and field. */
export function parseExportConfig(file: string, c: Record<string, unknown>): ExportModelConfig {
  const archs = c.architectures;
  let architecture = Array.isArray(archs) && typeof archs[0] === 'string' ? archs[0] : '';
  if (!architecture && c.model_type === 'qwen2') architecture = 'Qwen2ForCausalLM';
  if (!architecture && c.model_type === 'llama') architecture = 'LlamaForCausalLM';
  if (!architecture)
    throw formatError(
      `${file}: field 'architectures' is missing (expected ["Qwen2ForCausalLM"] or ["LlamaForCausalLM"])`,
    );
  if (architecture !== 'Qwen2ForCausalLM' && architecture !== 'LlamaForCausalLM')
    throw new MotifError(
      'ERR_MOTIF_UNSUPPORTED',
      `${file}: architecture '${architecture}' is not supported for GGUF export (supported: Qwen2ForCausalLM, LlamaForCausalLM)`,
    );
  const qwen2 = architecture === 'Qwen2ForCausalLM';
  const posInt = (key: string, dflt?: number): number => {
    const v = c[key];
    if ((v === undefined || v === null) && dflt !== undefined) return dflt;
    if (!Number.isSafeInteger(v) || (v as number) <= 0)
      throw formatError(`${file}: field '${key}' must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const posNum = (key: string, dflt: number, obj: Record<string, unknown> = c, where = ''): number => {
    const v = obj[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v))
      throw formatError(`${file}: field '${where}${key}' must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (key: string, dflt: boolean): boolean => {
    const v = c[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') throw formatError(`${file}: field '${key}' must be true or false`);
    return v;
  };
  const hidden = posInt('hidden_size');
  const heads = posInt('num_attention_heads');
  const kvHeads = posInt('num_key_value_heads', heads);
  if (heads % kvHeads !== 0)
    throw formatError(`${file}: num_attention_heads (${heads}) must be a multiple of num_key_value_heads (${kvHeads})`);
  const headDimExplicit = c.head_dim !== undefined && c.head_dim !== null;
  let headDim: number;
  if (headDimExplicit) headDim = posInt('head_dim');
  else {
    if (hidden % heads !== 0)
      throw formatError(`${file}: hidden_size must be a multiple of num_attention_heads when head_dim is absent`);
    headDim = hidden / heads;
  }
  if (headDim % 2 !== 0) throw formatError(`${file}: head dimension must be even for RoPE, got ${headDim}`);
  if (typeof c.hidden_act === 'string' && c.hidden_act !== 'silu')
    throw new MotifError(
      'ERR_MOTIF_UNSUPPORTED',
      `${file}: hidden_act '${c.hidden_act}' is not supported (expected silu)`,
    );
  let rope: ExportModelConfig['rope'] = { type: 'none' };
  const rs = c.rope_scaling;
  if (rs !== undefined && rs !== null) {
    if (typeof rs !== 'object' || Array.isArray(rs))
      throw formatError(`${file}: field 'rope_scaling' must be null or an object`);
    const r = rs as Record<string, unknown>;
    const t = r.rope_type ?? r.type;
    if (typeof t !== 'string') throw formatError(`${file}: rope_scaling needs a string 'rope_type' (or 'type')`);
    if (t === 'linear') rope = { type: 'linear', factor: posNum('factor', Number.NaN, r, 'rope_scaling.') };
    else if (t === 'llama3') {
      const orig = r.original_max_position_embeddings ?? c.original_max_position_embeddings;
      if (!Number.isSafeInteger(orig) || (orig as number) <= 0)
        throw formatError(`${file}: rope_scaling of type llama3 needs a positive original_max_position_embeddings`);
      rope = {
        type: 'llama3',
        factor: posNum('factor', Number.NaN, r, 'rope_scaling.'),
        lowFreqFactor: posNum('low_freq_factor', Number.NaN, r, 'rope_scaling.'),
        highFreqFactor: posNum('high_freq_factor', Number.NaN, r, 'rope_scaling.'),
        originalMaxPositions: orig as number,
      };
      if (rope.lowFreqFactor === rope.highFreqFactor)
        throw formatError(`${file}: rope_scaling high_freq_factor must differ from low_freq_factor`);
    } else if (t !== 'default')
      throw new MotifError(
        'ERR_MOTIF_UNSUPPORTED',
        `${file}: rope_scaling type '${t}' is not supported (supported: none, linear, llama3)`,
      );
    if ('factor' in rope && Number.isNaN(rope.factor))
      throw formatError(`${file}: rope_scaling.factor must be a positive number`);
  }
  const attentionBias = qwen2 ? false : bool('attention_bias', false);
  return {
    arch: qwen2 ? 'qwen2' : 'llama',
    hidden,
    intermediate: posInt('intermediate_size'),
    layers: posInt('num_hidden_layers'),
    heads,
    kvHeads,
    headDim,
    headDimExplicit,
    vocab: posInt('vocab_size'),
    maxPositions: posInt('max_position_embeddings', qwen2 ? 32768 : 2048),
    rmsEps: posNum('rms_norm_eps', 1e-6),
    ropeTheta: posNum('rope_theta', 10000),
    tie: bool('tie_word_embeddings', false),
    qkvBias: qwen2 || attentionBias,
    oBias: attentionBias,
    mlpBias: qwen2 ? false : bool('mlp_bias', false),
    rope,
    raw: c,
  };
}

/** One tensor of the export: where it comes from, what it becomes. */
interface TensorPlan {
  hf?: SafetensorsTensor;
  /** Data computed here (rope_freqs) instead of read from the checkpoint. */
  computed?: Float32Array;
  gguf: GgufTensorDescriptor;
  /** Heads of the Llama q/k permutation (rows grouped in heads of headDim), when it applies. */
  permuteHeads?: number;
}

function hfDtype(t: SafetensorsTensor): FloatDtype {
  if (t.dtype === 'F32') return 'f32';
  if (t.dtype === 'F16') return 'f16';
  if (t.dtype === 'BF16') return 'bf16';
  throw new MotifError(
    'ERR_MOTIF_UNSUPPORTED',
    `${t.file}: tensor '${t.name}' has dtype ${t.dtype}; GGUF export reads F32, F16 or BF16 weights`,
  );
}

function ggmlType(d: FloatDtype): GgmlTypeName {
  return d === 'f32' ? 'F32' : d === 'f16' ? 'F16' : 'BF16';
}

/** llama3 rope: per-frequency divisors of the base frequencies, as llama.cpp's rope_freqs tensor holds them. */
/** Reads and parses `dir`/config.json (see {@link parseExportConfig}). */
export async function readExportConfig(dir: string): Promise<ExportModelConfig> {
  const file = path.join(dir, 'config.json');
  return parseExportConfig(file, await readJsonFile(file, "the model's config.json", true));
}

export function llama3RopeFreqFactors(cfg: ExportModelConfig): Float32Array {
  if (cfg.rope.type !== 'llama3') throw new MotifError('ERR_MOTIF_INTERNAL', 'llama3RopeFreqFactors: not llama3 rope');
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = cfg.rope;
  const D = cfg.headDim;
  const out = new Float32Array(D / 2);
  const lowWavelen = originalMaxPositions / lowFreqFactor;
  const highWavelen = originalMaxPositions / highFreqFactor;
  for (let i = 0; i < D / 2; i++) {
    const freq = 1 / Math.fround(cfg.ropeTheta) ** ((2 * i) / D);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = factor;
    else {
      const smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

/**
 * The llama.cpp architecture to write. llama.cpp's qwen2 requires heads * head_dim == hidden, so a
 * Qwen2 checkpoint with another head_dim is written as `llama` (q/k permuted for its rope; the q/k/v
 * biases are optional tensors there): the same computation, since Qwen2 is Llama with q/k/v biases.
 */
export function ggufArchitecture(cfg: ExportModelConfig): 'qwen2' | 'llama' {
  return cfg.arch === 'qwen2' && cfg.headDim * cfg.heads !== cfg.hidden ? 'llama' : cfg.arch;
}

function planTensors(
  cfg: ExportModelConfig,
  st: SafetensorsModel,
  dtype: ExportDtype,
): { plans: TensorPlan[]; skipped: string[] } {
  const used = new Set<string>();
  const plans: TensorPlan[] = [];
  const add = (hfName: string, shape: number[], ggufName: string, permuteHeads?: number) => {
    const t = st.get(hfName);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw formatError(
        `${t.file}: tensor '${hfName}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}] from config.json`,
      );
    hfDtype(t);
    used.add(hfName);
    const type: GgmlTypeName = shape.length === 1 ? 'F32' : ggmlType(dtype);
    plans.push({ hf: t, gguf: { name: ggufName, shape, type }, permuteHeads });
  };
  const { hidden: C, intermediate: I, heads: H, kvHeads: Hkv, headDim: D, vocab: V } = cfg;
  const llama = ggufArchitecture(cfg) === 'llama';
  if (cfg.rope.type === 'llama3') {
    if (!llama)
      throw new MotifError(
        'ERR_MOTIF_UNSUPPORTED',
        'llama3 rope scaling is only exported for LlamaForCausalLM (llama.cpp reads rope_freqs for its llama architecture only)',
      );
    const f = llama3RopeFreqFactors(cfg);
    plans.push({ computed: f, gguf: { name: 'rope_freqs.weight', shape: [f.length], type: 'F32' } });
  }
  add('model.embed_tokens.weight', [V, C], 'token_embd.weight');
  for (let l = 0; l < cfg.layers; l++) {
    const p = `model.layers.${l}.`;
    const b = `blk.${l}.`;
    add(`${p}input_layernorm.weight`, [C], `${b}attn_norm.weight`);
    add(`${p}self_attn.q_proj.weight`, [H * D, C], `${b}attn_q.weight`, llama ? H : undefined);
    if (cfg.qkvBias) add(`${p}self_attn.q_proj.bias`, [H * D], `${b}attn_q.bias`, llama ? H : undefined);
    add(`${p}self_attn.k_proj.weight`, [Hkv * D, C], `${b}attn_k.weight`, llama ? Hkv : undefined);
    if (cfg.qkvBias) add(`${p}self_attn.k_proj.bias`, [Hkv * D], `${b}attn_k.bias`, llama ? Hkv : undefined);
    add(`${p}self_attn.v_proj.weight`, [Hkv * D, C], `${b}attn_v.weight`);
    if (cfg.qkvBias) add(`${p}self_attn.v_proj.bias`, [Hkv * D], `${b}attn_v.bias`);
    add(`${p}self_attn.o_proj.weight`, [C, H * D], `${b}attn_output.weight`);
    if (cfg.oBias) add(`${p}self_attn.o_proj.bias`, [C], `${b}attn_output.bias`);
    add(`${p}post_attention_layernorm.weight`, [C], `${b}ffn_norm.weight`);
    add(`${p}mlp.gate_proj.weight`, [I, C], `${b}ffn_gate.weight`);
    if (cfg.mlpBias) add(`${p}mlp.gate_proj.bias`, [I], `${b}ffn_gate.bias`);
    add(`${p}mlp.up_proj.weight`, [I, C], `${b}ffn_up.weight`);
    if (cfg.mlpBias) add(`${p}mlp.up_proj.bias`, [I], `${b}ffn_up.bias`);
    add(`${p}mlp.down_proj.weight`, [C, I], `${b}ffn_down.weight`);
    if (cfg.mlpBias) add(`${p}mlp.down_proj.bias`, [C], `${b}ffn_down.bias`);
  }
  add('model.norm.weight', [C], 'output_norm.weight');
  // A tied model may still ship lm_head.weight (a copy): export it, as llama.cpp's converter does.
  if (st.has('lm_head.weight') || !cfg.tie) add('lm_head.weight', [V, C], 'output.weight');
  const skipped = [...st.tensors.keys()].filter((n) => !used.has(n)).sort();
  return { plans, skipped };
}

/** GPT-2's byte -> printable character map (byte-level BPE), byte b at index b. */
function byteLevelChars(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const set = new Set(printable);
  const out = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(set.has(b) ? b : 256 + extra++);
  return out;
}

/** Added tokens that llama.cpp's converter treats as control tokens even when not marked special. */
function looksSpecial(text: string): boolean {
  return (
    ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(text) ||
    (text.startsWith('<|') && text.endsWith('|>')) ||
    (text.startsWith('<｜') && text.endsWith('｜>')) ||
    (text.startsWith('<unused') && text.endsWith('>'))
  );
}

function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string')
    return (v as { content: string }).content;
  return undefined;
}

/** Does the post-processor template put `bos` first? (how tokenizer.json says "add BOS") */
function templateAddsToken(post: unknown, content: string): boolean | undefined {
  if (!post || typeof post !== 'object') return undefined;
  const p = post as { type?: string; processors?: unknown[]; single?: unknown[] };
  if (p.type === 'Sequence' && Array.isArray(p.processors)) {
    for (const q of p.processors) {
      const r = templateAddsToken(q, content);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  if (p.type === 'TemplateProcessing' && Array.isArray(p.single)) {
    const first = p.single[0] as { SpecialToken?: { id?: string } } | undefined;
    return first?.SpecialToken?.id === content;
  }
  return undefined;
}

async function tokenizerMetadata(
  dir: string,
  cfg: ExportModelConfig,
): Promise<{ entries: Array<[string, GgufValue]>; source: 'tokenizer.json' | 'placeholder' }> {
  const pre = cfg.arch === 'qwen2' ? 'qwen2' : 'llama-bpe';
  const V = cfg.vocab;
  const tokPath = path.join(dir, 'tokenizer.json');
  const tok = await readJsonFile(tokPath, 'the tokenizer', false);
  const tcPath = path.join(dir, 'tokenizer_config.json');
  const tc = (await readJsonFile(tcPath, 'the tokenizer config', false)) ?? {};
  const entries: Array<[string, GgufValue]> = [];
  if (!tok) {
    // Placeholder: byte-level tokens for the first ids (so "\n" and ASCII tokenize), filler tokens, and
    // an <|endoftext|> control token at the last id serving as BOS/EOS/padding.
    const bytes = byteLevelChars();
    const tokens: string[] = [];
    const types: number[] = [];
    for (let i = 0; i < V; i++) {
      if (i === V - 1) {
        tokens.push('<|endoftext|>');
        types.push(TOKEN_TYPE.CONTROL);
      } else {
        tokens.push(i < 256 ? bytes[i] : `<tok${i}>`);
        types.push(TOKEN_TYPE.NORMAL);
      }
    }
    entries.push(
      ['tokenizer.ggml.model', gguf.str('gpt2')],
      ['tokenizer.ggml.pre', gguf.str(pre)],
      ['tokenizer.ggml.tokens', gguf.arr('string', tokens)],
      ['tokenizer.ggml.token_type', gguf.arr('int32', types)],
      ['tokenizer.ggml.merges', gguf.arr('string', [])],
      ['tokenizer.ggml.bos_token_id', gguf.u32(V - 1)],
      ['tokenizer.ggml.eos_token_id', gguf.u32(V - 1)],
      ['tokenizer.ggml.padding_token_id', gguf.u32(V - 1)],
      ['tokenizer.ggml.add_bos_token', gguf.bool(false)],
    );
    return { entries, source: 'placeholder' };
  }

  const model = tok.model as { type?: unknown; vocab?: unknown; merges?: unknown } | undefined;
  if (model?.type !== 'BPE' || !model.vocab || typeof model.vocab !== 'object' || Array.isArray(model.vocab))
    throw new MotifError(
      'ERR_MOTIF_UNSUPPORTED',
      `${tokPath}: model.type is ${JSON.stringify(model?.type)}; GGUF export writes byte-level BPE tokenizers (Qwen2, Llama 3)`,
    );
  const byteLevel =
    JSON.stringify(tok.pre_tokenizer ?? null).includes('"ByteLevel"') ||
    JSON.stringify(tok.decoder ?? null).includes('"ByteLevel"');
  if (!byteLevel)
    throw new MotifError(
      'ERR_MOTIF_UNSUPPORTED',
      `${tokPath}: a BPE tokenizer without a ByteLevel pre-tokenizer (SentencePiece-style) is not supported; ` +
        'GGUF export writes byte-level BPE tokenizers (Qwen2, Llama 3)',
    );
  const tokens = new Array<string | undefined>(V);
  const types = new Array<number>(V).fill(TOKEN_TYPE.NORMAL);
  const idOf = new Map<string, number>();
  for (const [text, id] of Object.entries(model.vocab as Record<string, unknown>)) {
    if (!Number.isSafeInteger(id) || (id as number) < 0)
      throw formatError(`${tokPath}: model.vocab['${text}'] must be a non-negative integer id`);
    if ((id as number) >= V)
      throw formatError(`${tokPath}: token '${text}' has id ${id}, but config.json vocab_size is ${V}`);
    tokens[id as number] = text;
    idOf.set(text, id as number);
  }
  const added = Array.isArray(tok.added_tokens) ? tok.added_tokens : [];
  for (const a of added as Array<{ id?: unknown; content?: unknown; special?: unknown }>) {
    if (!Number.isSafeInteger(a?.id) || typeof a.content !== 'string')
      throw formatError(`${tokPath}: added_tokens entries need an integer id and a string content`);
    const id = a.id as number;
    if (id < 0 || id >= V)
      throw formatError(`${tokPath}: added token '${a.content}' has id ${id}, but config.json vocab_size is ${V}`);
    tokens[id] = a.content;
    idOf.set(a.content, id);
    types[id] = a.special === true || looksSpecial(a.content) ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED;
  }
  const list: string[] = [];
  for (let i = 0; i < V; i++) {
    if (tokens[i] === undefined) {
      list.push(`[PAD${i}]`);
      types[i] = TOKEN_TYPE.UNUSED;
    } else list.push(tokens[i] as string);
  }
  const merges: string[] = [];
  if (Array.isArray(model.merges)) {
    for (const m of model.merges) {
      if (typeof m === 'string') merges.push(m);
      else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string')
        merges.push(`${m[0]} ${m[1]}`);
      else throw formatError(`${tokPath}: model.merges entries must be "a b" strings or [a, b] pairs`);
    }
  }
  entries.push(
    ['tokenizer.ggml.model', gguf.str('gpt2')],
    ['tokenizer.ggml.pre', gguf.str(pre)],
    ['tokenizer.ggml.tokens', gguf.arr('string', list)],
    ['tokenizer.ggml.token_type', gguf.arr('int32', types)],
    ['tokenizer.ggml.merges', gguf.arr('string', merges)],
  );
  // Special tokens: tokenizer_config.json by content, then config.json's *_token_id.
  const special = (kind: 'bos' | 'eos' | 'unk' | 'pad'): number | undefined => {
    const content = tokenContent(tc[`${kind}_token`]);
    if (content !== undefined) {
      const id = idOf.get(content);
      if (id !== undefined) return id;
    }
    let v = cfg.raw[`${kind}_token_id`];
    if (Array.isArray(v)) v = v[0];
    return Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < V ? (v as number) : undefined;
  };
  const keys = { bos: 'bos_token_id', eos: 'eos_token_id', unk: 'unknown_token_id', pad: 'padding_token_id' } as const;
  for (const kind of ['bos', 'eos', 'unk', 'pad'] as const) {
    const id = special(kind);
    if (id !== undefined) entries.push([`tokenizer.ggml.${keys[kind]}`, gguf.u32(id)]);
  }
  let addBos = typeof tc.add_bos_token === 'boolean' ? tc.add_bos_token : undefined;
  if (addBos === undefined) {
    const bos = tokenContent(tc.bos_token);
    addBos = bos !== undefined ? (templateAddsToken(tok.post_processor, bos) ?? false) : false;
  }
  entries.push(['tokenizer.ggml.add_bos_token', gguf.bool(addBos)]);
  if (typeof tc.add_eos_token === 'boolean')
    entries.push(['tokenizer.ggml.add_eos_token', gguf.bool(tc.add_eos_token)]);
  // chat_template: a string, or a list of {name, template} (default one as tokenizer.chat_template);
  // newer folders keep it in chat_template.jinja.
  const ct = tc.chat_template;
  if (typeof ct === 'string') entries.push(['tokenizer.chat_template', gguf.str(ct)]);
  else if (Array.isArray(ct)) {
    for (const t of ct as Array<{ name?: unknown; template?: unknown }>) {
      if (typeof t?.name !== 'string' || typeof t.template !== 'string') continue;
      const key = t.name === 'default' ? 'tokenizer.chat_template' : `tokenizer.chat_template.${t.name}`;
      entries.push([key, gguf.str(t.template)]);
    }
  } else {
    try {
      const jinja = await readFile(path.join(dir, 'chat_template.jinja'), 'utf8');
      entries.push(['tokenizer.chat_template', gguf.str(jinja)]);
    } catch {
      // no chat template: fine
    }
  }
  return { entries, source: 'tokenizer.json' };
}

function architectureMetadata(cfg: ExportModelConfig, dtype: ExportDtype, name: string): Array<[string, GgufValue]> {
  const a = ggufArchitecture(cfg);
  const out: Array<[string, GgufValue]> = [
    ['general.architecture', gguf.str(a)],
    ['general.type', gguf.str('model')],
    ['general.name', gguf.str(name)],
    ['general.file_type', gguf.u32(FILE_TYPE[dtype])],
    [`${a}.vocab_size`, gguf.u32(cfg.vocab)],
    [`${a}.context_length`, gguf.u32(cfg.maxPositions)],
    [`${a}.embedding_length`, gguf.u32(cfg.hidden)],
    [`${a}.block_count`, gguf.u32(cfg.layers)],
    [`${a}.feed_forward_length`, gguf.u32(cfg.intermediate)],
    [`${a}.attention.head_count`, gguf.u32(cfg.heads)],
    [`${a}.attention.head_count_kv`, gguf.u32(cfg.kvHeads)],
    [`${a}.attention.layer_norm_rms_epsilon`, gguf.f32(cfg.rmsEps)],
    [`${a}.rope.freq_base`, gguf.f32(cfg.ropeTheta)],
    [`${a}.rope.dimension_count`, gguf.u32(cfg.headDim)],
  ];
  if (cfg.headDimExplicit || cfg.headDim * cfg.heads !== cfg.hidden) {
    out.push(
      [`${a}.attention.key_length`, gguf.u32(cfg.headDim)],
      [`${a}.attention.value_length`, gguf.u32(cfg.headDim)],
    );
  }
  if (cfg.rope.type === 'linear') {
    out.push([`${a}.rope.scaling.type`, gguf.str('linear')], [`${a}.rope.scaling.factor`, gguf.f32(cfg.rope.factor)]);
  }
  return out;
}

/** Copies rows of a [heads*D, cols] block so each head's rows go from HF's rotate-half order to interleaved pairs. */
function permuteRows(src: Uint8Array, dst: Uint8Array, rows: number, rowBytes: number, D: number): void {
  const half = D / 2;
  for (let h = 0; h < rows / D; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * D + j * half + i) * rowBytes;
        const to = (h * D + 2 * i + j) * rowBytes;
        dst.set(src.subarray(from, from + rowBytes), to);
      }
    }
  }
}

/**
 * Exports a HuggingFace Qwen2/Llama folder as a GGUF file llama.cpp loads (see the file comment).
 * Rejects with a MotifError: ERR_MOTIF_INVALID_ARGUMENT (bad options), ERR_MOTIF_IO (missing folder,
 * unreadable file, unwritable output), ERR_MOTIF_FORMAT (bad config/weights), ERR_MOTIF_UNSUPPORTED.
 */
export async function exportGguf(options: ExportGgufOptions): Promise<ExportGgufResult> {
  if (options === null || typeof options !== 'object') throw invalidParameterError('options', 'an object', options);
  const { modelDir, outFile, onProgress } = options;
  if (typeof modelDir !== 'string' || modelDir.length === 0)
    throw invalidParameterError('modelDir', 'a model folder path', modelDir);
  if (typeof outFile !== 'string' || outFile.length === 0)
    throw invalidParameterError('outFile', 'an output file path', outFile);
  if (options.dtype !== undefined && !DTYPES.includes(options.dtype))
    throw invalidParameterError('dtype', "'f32', 'f16' or 'bf16'", options.dtype);
  if (onProgress !== undefined && typeof onProgress !== 'function')
    throw invalidParameterError('onProgress', 'a function', onProgress);
  const dir = path.resolve(modelDir);
  const out = path.resolve(outFile);
  try {
    if (!(await stat(dir)).isDirectory())
      throw new MotifError('ERR_MOTIF_IO', `${dir} is not a folder: expected a HuggingFace model folder`);
  } catch (err) {
    if (err instanceof MotifError) throw err;
    throw new MotifError('ERR_MOTIF_IO', `model folder ${dir} does not exist or cannot be read`, { cause: err });
  }
  try {
    if ((await stat(out)).isDirectory())
      throw new MotifError('ERR_MOTIF_IO', `cannot write ${out}: it is a folder; give a file path such as model.gguf`);
  } catch (err) {
    if (err instanceof MotifError) throw err;
  }
  const cfgPath = path.join(dir, 'config.json');
  const cfg = parseExportConfig(cfgPath, await readJsonFile(cfgPath, "the model's config.json", true));

  const st = await openSafetensorsModel(dir);
  let writer: GgufFileWriter | undefined;
  try {
    const embed = st.get('model.embed_tokens.weight');
    const dtype: ExportDtype = options.dtype ?? hfDtype(embed);
    const { plans, skipped } = planTensors(cfg, st, dtype);
    const tokenizer = await tokenizerMetadata(dir, cfg);
    const metadata = [...architectureMetadata(cfg, dtype, path.basename(dir)), ...tokenizer.entries];
    writer = await GgufFileWriter.create(
      out,
      metadata,
      plans.map((p) => p.gguf),
    );
    const totalBytes = writer.layout.tensorBytes.reduce((a, b) => a + b, 0);
    let bytesWritten = 0;
    let srcBuf = new Uint8Array(0);
    let permBuf = new Uint8Array(0);
    let dstBuf = new Uint8Array(0);
    for (let ti = 0; ti < plans.length; ti++) {
      const plan = plans[ti];
      const outType = plan.gguf.type;
      const to: FloatDtype = outType === 'F32' ? 'f32' : outType === 'F16' ? 'f16' : 'bf16';
      if (plan.computed) {
        const bytes = new Uint8Array(plan.computed.buffer, plan.computed.byteOffset, plan.computed.byteLength);
        await writer.write(bytes);
        bytesWritten += bytes.byteLength;
        onProgress?.({ tensor: plan.gguf.name, tensorIndex: ti, tensorCount: plans.length, bytesWritten, totalBytes });
        continue;
      }
      const t = plan.hf!;
      const from = hfDtype(t);
      const rows = t.shape[0];
      const cols = t.numel / rows;
      const srcRow = cols * FLOAT_DTYPE_BYTES[from];
      const dstRow = cols * FLOAT_DTYPE_BYTES[to];
      const unit = plan.permuteHeads ? cfg.headDim : 1;
      const chunkRows = Math.max(unit, Math.floor(CHUNK_BYTES / srcRow / unit) * unit);
      const maxRows = Math.min(rows, chunkRows);
      if (srcBuf.byteLength < maxRows * srcRow) srcBuf = new Uint8Array(maxRows * srcRow);
      if (dstBuf.byteLength < maxRows * dstRow) dstBuf = new Uint8Array(maxRows * dstRow);
      if (plan.permuteHeads && permBuf.byteLength < maxRows * srcRow) permBuf = new Uint8Array(maxRows * srcRow);
      for (let r0 = 0; r0 < rows; r0 += chunkRows) {
        const n = Math.min(chunkRows, rows - r0);
        let src = await st.readRange(t.name, r0 * srcRow, n * srcRow, srcBuf);
        src = src.subarray(0, n * srcRow);
        if (plan.permuteHeads) {
          permuteRows(src, permBuf, n, srcRow, cfg.headDim);
          src = permBuf.subarray(0, n * srcRow);
        }
        const dst = dstBuf.subarray(0, n * dstRow);
        convertFloats(src, from, dst, to, n * cols);
        await writer.write(dst);
        bytesWritten += dst.byteLength;
        onProgress?.({ tensor: plan.gguf.name, tensorIndex: ti, tensorCount: plans.length, bytesWritten, totalBytes });
      }
    }
    await writer.commit();
    return {
      outFile: out,
      architecture: ggufArchitecture(cfg),
      dtype,
      tensorCount: plans.length,
      fileBytes: writer.layout.fileBytes,
      tokenizer: tokenizer.source,
      skippedTensors: skipped,
    };
  } catch (err) {
    await writer?.abort();
    throw err;
  } finally {
    await st.close();
  }
}
