/**
 * tiny-model.ts — writes small random Qwen2/Llama model folders from TypeScript (no PyTorch),
 * for tests that need a valid model to load or to corrupt on purpose.
 *
 * The safetensors writer here is deliberately plain: 8-byte little-endian header length,
 * JSON header, raw little-endian f32 data.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface TinyModelOptions {
  arch?: 'qwen2' | 'llama';
  hidden?: number;
  intermediate?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  vocab?: number;
  tie?: boolean;
  seed?: number;
}

export interface TensorSpec {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** A small deterministic PRNG (mulberry32) so test models are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Serializes tensors (all F32) as a safetensors file. */
export function safetensorsBytes(tensors: TensorSpec[]): Buffer {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.data.length * 4;
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const out = Buffer.alloc(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  out.write(json, 8, 'utf8');
  let at = 8 + json.length;
  for (const t of tensors) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, at);
    at += t.data.byteLength;
  }
  return out;
}

/** The config.json and tensors of a tiny random model. */
export function tinyModel(opts: TinyModelOptions = {}): { config: Record<string, unknown>; tensors: TensorSpec[] } {
  const arch = opts.arch ?? 'qwen2';
  const C = opts.hidden ?? 16;
  const I = opts.intermediate ?? 24;
  const L = opts.layers ?? 2;
  const H = opts.heads ?? 4;
  const Hkv = opts.kvHeads ?? 2;
  const V = opts.vocab ?? 37;
  const D = C / H;
  const tie = opts.tie ?? false;
  const rand = rng(opts.seed ?? 7);
  const tensor = (name: string, shape: number[], scale = 0.2, center = 0): TensorSpec => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = center + (rand() * 2 - 1) * scale;
    return { name, shape, data };
  };
  const tensors: TensorSpec[] = [tensor('model.embed_tokens.weight', [V, C], 1)];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    tensors.push(tensor(`${p}input_layernorm.weight`, [C], 0.1, 1));
    tensors.push(tensor(`${p}self_attn.q_proj.weight`, [H * D, C]));
    tensors.push(tensor(`${p}self_attn.k_proj.weight`, [Hkv * D, C]));
    tensors.push(tensor(`${p}self_attn.v_proj.weight`, [Hkv * D, C]));
    if (arch === 'qwen2') {
      tensors.push(tensor(`${p}self_attn.q_proj.bias`, [H * D]));
      tensors.push(tensor(`${p}self_attn.k_proj.bias`, [Hkv * D]));
      tensors.push(tensor(`${p}self_attn.v_proj.bias`, [Hkv * D]));
    }
    tensors.push(tensor(`${p}self_attn.o_proj.weight`, [C, H * D]));
    tensors.push(tensor(`${p}post_attention_layernorm.weight`, [C], 0.1, 1));
    tensors.push(tensor(`${p}mlp.gate_proj.weight`, [I, C]));
    tensors.push(tensor(`${p}mlp.up_proj.weight`, [I, C]));
    tensors.push(tensor(`${p}mlp.down_proj.weight`, [C, I]));
  }
  tensors.push(tensor('model.norm.weight', [C], 0.1, 1));
  if (!tie) tensors.push(tensor('lm_head.weight', [V, C]));
  const config = {
    architectures: [arch === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: arch,
    hidden_size: C,
    intermediate_size: I,
    num_hidden_layers: L,
    num_attention_heads: H,
    num_key_value_heads: Hkv,
    vocab_size: V,
    max_position_embeddings: 128,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: tie,
    hidden_act: 'silu',
    torch_dtype: 'float32',
  };
  return { config, tensors };
}

/** Writes a tiny random model folder and returns its path. */
export async function writeTinyModel(dir: string, opts: TinyModelOptions = {}): Promise<string> {
  const { config, tensors } = tinyModel(opts);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  await writeFile(path.join(dir, 'model.safetensors'), safetensorsBytes(tensors));
  return dir;
}

/** The real Qwen2.5 tokenizer (tokenizer.json + tokenizer_config.json with its chat template). */
export const QWEN_TOKENIZER_DIR = path.resolve(import.meta.dirname, '../../../shared/data/tokenizer/qwen2.5');

/**
 * A tiny random Qwen2 (hidden 32, 2 layers, tied head) over the real Qwen2.5 vocabulary, with its
 * tokenizer and chat template and max_position_embeddings 256: enough for chat-formatted SFT tests.
 */
export async function writeTinyChatModel(dir: string): Promise<string> {
  const { config, tensors } = tinyModel({
    vocab: 151665,
    hidden: 32,
    intermediate: 64,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    tie: true,
  });
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...config, max_position_embeddings: 256 }, null, 2));
  await writeFile(path.join(dir, 'model.safetensors'), safetensorsBytes(tensors));
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    await copyFile(path.join(QWEN_TOKENIZER_DIR, f), path.join(dir, f));
  return dir;
}
