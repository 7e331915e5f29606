/**
 * random-model.ts — a freshly initialized tiny Qwen2 model folder (config.json + f32
 * model.safetensors), the starting point the demo model is trained from. Weights are drawn from a
 * seeded PRNG (normal, std 1/√fan_in for projections, 3/√hidden for lm_head, 1 for the embedding,
 * norms at 1), so the
 * same seed writes the same bytes on every platform.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRng } from '../data/random.js';
import { type TensorToWrite, writeSafetensors } from '../formats/safetensors-write.js';

/** The sizes of a tiny Qwen2. */
export interface TinyQwen2Sizes {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  maxPositions: number;
}

/** The config.json of a tiny Qwen2 with these sizes (untied embeddings, f32). */
export function tinyQwen2Config(s: TinyQwen2Sizes): Record<string, unknown> {
  return {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    vocab_size: s.vocab,
    max_position_embeddings: s.maxPositions,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    hidden_act: 'silu',
    torch_dtype: 'float32',
    bos_token_id: null,
    eos_token_id: null,
  };
}

/** Writes config.json and model.safetensors of a random tiny Qwen2 into `dir` (created). */
export async function writeRandomQwen2(dir: string, s: TinyQwen2Sizes, seed: number): Promise<void> {
  const rng = createRng(seed);
  // Box–Muller from the seeded uniform stream.
  const normal = () => {
    const u = Math.max(rng(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
  };
  const tensors = new Map<string, TensorToWrite>();
  const fill = (name: string, shape: number[], std: number, center = 0) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = std === 0 ? center : center + std * normal();
    tensors.set(name, { data, shape });
  };
  const D = s.hidden / s.heads;
  fill('model.embed_tokens.weight', [s.vocab, s.hidden], 1);
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    const inStd = 1 / Math.sqrt(s.hidden);
    fill(`${p}input_layernorm.weight`, [s.hidden], 0, 1);
    fill(`${p}self_attn.q_proj.weight`, [s.heads * D, s.hidden], inStd);
    fill(`${p}self_attn.q_proj.bias`, [s.heads * D], 0);
    fill(`${p}self_attn.k_proj.weight`, [s.kvHeads * D, s.hidden], inStd);
    fill(`${p}self_attn.k_proj.bias`, [s.kvHeads * D], 0);
    fill(`${p}self_attn.v_proj.weight`, [s.kvHeads * D, s.hidden], inStd);
    fill(`${p}self_attn.v_proj.bias`, [s.kvHeads * D], 0);
    fill(`${p}self_attn.o_proj.weight`, [s.hidden, s.heads * D], 1 / Math.sqrt(s.heads * D));
    fill(`${p}post_attention_layernorm.weight`, [s.hidden], 0, 1);
    fill(`${p}mlp.gate_proj.weight`, [s.intermediate, s.hidden], inStd);
    fill(`${p}mlp.up_proj.weight`, [s.intermediate, s.hidden], inStd);
    fill(`${p}mlp.down_proj.weight`, [s.hidden, s.intermediate], 1 / Math.sqrt(s.intermediate));
  }
  fill('model.norm.weight', [s.hidden], 0, 1);
  // The LoRA never touches lm_head or the final norm, so their scale caps the logits: a final hidden
  // state of norm √C reaches at most std·C on one token. std 3/√C leaves room for confident
  // predictions (a cap of 3√C) where 1/√C would hold every probability below ~0.9.
  fill('lm_head.weight', [s.vocab, s.hidden], 3 / Math.sqrt(s.hidden));
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'config.json'), `${JSON.stringify(tinyQwen2Config(s), null, 2)}\n`);
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
}
