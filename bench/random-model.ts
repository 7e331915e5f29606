/**
 * random-model.ts — writes HuggingFace folders of random weights with real models' shapes, for
 * benchmarks: config.json + model.safetensors, streamed to disk (a 0.5B model is ~1 GB in bf16).
 * Written once under bench/.generated/ and reused while its config matches.
 */

import { once } from 'node:events';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface BenchModelShape {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  tie: boolean;
}

/** Qwen2.5-0.5B-Instruct's shapes (from its config.json). */
export const QWEN25_05B: BenchModelShape = {
  hidden: 896,
  intermediate: 4864,
  layers: 24,
  heads: 14,
  kvHeads: 2,
  vocab: 151936,
  tie: true,
};

/** Qwen2.5-3B-Instruct's shapes. */
export const QWEN25_3B: BenchModelShape = {
  hidden: 2048,
  intermediate: 11008,
  layers: 36,
  heads: 16,
  kvHeads: 2,
  vocab: 151936,
  tie: true,
};

export type BenchDtype = 'f32' | 'f16' | 'bf16';

function tensorList(s: BenchModelShape): Array<{ name: string; shape: number[]; kind: 'linear' | 'norm' | 'bias' }> {
  const D = s.hidden / s.heads;
  const out: Array<{ name: string; shape: number[]; kind: 'linear' | 'norm' | 'bias' }> = [
    { name: 'model.embed_tokens.weight', shape: [s.vocab, s.hidden], kind: 'linear' },
  ];
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      { name: `${p}input_layernorm.weight`, shape: [s.hidden], kind: 'norm' },
      { name: `${p}self_attn.q_proj.weight`, shape: [s.heads * D, s.hidden], kind: 'linear' },
      { name: `${p}self_attn.q_proj.bias`, shape: [s.heads * D], kind: 'bias' },
      { name: `${p}self_attn.k_proj.weight`, shape: [s.kvHeads * D, s.hidden], kind: 'linear' },
      { name: `${p}self_attn.k_proj.bias`, shape: [s.kvHeads * D], kind: 'bias' },
      { name: `${p}self_attn.v_proj.weight`, shape: [s.kvHeads * D, s.hidden], kind: 'linear' },
      { name: `${p}self_attn.v_proj.bias`, shape: [s.kvHeads * D], kind: 'bias' },
      { name: `${p}self_attn.o_proj.weight`, shape: [s.hidden, s.heads * D], kind: 'linear' },
      { name: `${p}post_attention_layernorm.weight`, shape: [s.hidden], kind: 'norm' },
      { name: `${p}mlp.gate_proj.weight`, shape: [s.intermediate, s.hidden], kind: 'linear' },
      { name: `${p}mlp.up_proj.weight`, shape: [s.intermediate, s.hidden], kind: 'linear' },
      { name: `${p}mlp.down_proj.weight`, shape: [s.hidden, s.intermediate], kind: 'linear' },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [s.hidden], kind: 'norm' });
  if (!s.tie) out.push({ name: 'lm_head.weight', shape: [s.vocab, s.hidden], kind: 'linear' });
  return out;
}

/** Fills `out` (bytes of `dtype`) with values uniform in [center - scale, center + scale). */
function fillRandom(
  out: Buffer,
  dtype: BenchDtype,
  n: number,
  center: number,
  scale: number,
  state: { s: number },
): void {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  let s = state.s;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const v = center + ((s >>> 8) / 16777216 - 0.5) * 2 * scale;
    if (dtype === 'f32') {
      out.writeFloatLE(v, i * 4);
    } else if (dtype === 'bf16') {
      f[0] = v;
      const bits = u[0];
      out.writeUInt16LE(((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff, i * 2);
    } else {
      // f16 by truncation is enough for random data of this range (|v| < 2)
      f[0] = v;
      const bits = u[0];
      const sign = (bits >>> 16) & 0x8000;
      const exp = ((bits >>> 23) & 0xff) - 127 + 15;
      const half = exp <= 0 ? sign : sign | (exp << 10) | ((bits >>> 13) & 0x3ff);
      out.writeUInt16LE(half, i * 2);
    }
  }
  state.s = s;
}

/**
 * Returns a folder holding a random model of `shape` in `dtype`, writing it (atomically: temp
 * folder, then rename) when it is missing or was written for another shape.
 */
export async function ensureRandomModel(
  dir: string,
  shape: BenchModelShape,
  dtype: BenchDtype,
  seed = 1,
): Promise<string> {
  const config = {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    hidden_size: shape.hidden,
    intermediate_size: shape.intermediate,
    num_hidden_layers: shape.layers,
    num_attention_heads: shape.heads,
    num_key_value_heads: shape.kvHeads,
    vocab_size: shape.vocab,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    tie_word_embeddings: shape.tie,
    hidden_act: 'silu',
    torch_dtype: { f32: 'float32', f16: 'float16', bf16: 'bfloat16' }[dtype],
    motif_bench_seed: seed,
  };
  const cfgPath = path.join(dir, 'config.json');
  if (existsSync(cfgPath) && existsSync(path.join(dir, 'model.safetensors'))) {
    if (readFileSync(cfgPath, 'utf8') === JSON.stringify(config, null, 2)) return dir;
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const esize = dtype === 'f32' ? 4 : 2;
  const st = { f32: 'F32', f16: 'F16', bf16: 'BF16' }[dtype];
  const tensors = tensorList(shape);
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * esize;
    header[t.name] = { dtype: st, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const stream = createWriteStream(path.join(tmp, 'model.safetensors'));
  const write = async (b: Buffer) => {
    if (!stream.write(b)) await once(stream, 'drain');
  };
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(json.length));
  await write(head);
  await write(Buffer.from(json, 'utf8'));
  const state = { s: seed >>> 0 };
  const chunk = 1 << 20;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const fanIn = t.shape[t.shape.length - 1];
    const scale = t.kind === 'norm' ? 0.1 : t.kind === 'bias' ? 0.05 : Math.sqrt(3 / fanIn);
    const center = t.kind === 'norm' ? 1 : 0;
    for (let i = 0; i < n; i += chunk) {
      const m = Math.min(chunk, n - i);
      const buf = Buffer.alloc(m * esize);
      fillRandom(buf, dtype, m, center, scale, state);
      await write(buf);
    }
  }
  stream.end();
  await once(stream, 'finish');
  await writeFile(path.join(tmp, 'config.json'), JSON.stringify(config, null, 2));
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return dir;
}

/** Parameters of the model's linear layers (what a token's matmuls multiply by), LM head included. */
export function linearParams(s: BenchModelShape): { perLayer: number; lmHead: number } {
  const D = s.hidden / s.heads;
  const attn = s.hidden * s.heads * D * 2 + s.hidden * s.kvHeads * D * 2;
  const mlp = 3 * s.hidden * s.intermediate;
  return { perLayer: attn + mlp, lmHead: s.vocab * s.hidden };
}
