/**
 * gguf.test.ts — GGUF export (lib/export/exportGguf.ts) checked against llama.cpp itself.
 *
 * Small random f32 models (the PyTorch reference's make-model when torch is installed, else
 * test/helpers/tiny-model.ts) — Qwen2 and Llama, GQA, tied and untied, Llama biases and llama3 rope,
 * a Qwen2 with head_dim != hidden/heads — are exported to GGUF and loaded in llama.cpp through
 * node-llama-cpp. llama.cpp's greedy continuation of a prompt (16 new tokens, temperature 0) must
 * equal, token for token, the greedy continuation this engine computes by repeated full forwards
 * (`loadModel(dir).forward(tokens)`, argmax of the last row). llama.cpp runs with an F32 KV cache and
 * flash attention off: its CPU flash-attention path rounds through f16 (~1e-3 relative), enough to
 * flip a near-tie; with them it matches the engine to ~1e-8.
 *
 * The file itself is read back with an independent reader (test/helpers/gguf-reader.ts) and with
 * node-llama-cpp's readGgufFileInfo: header, metadata keys and types, tensor names/shapes/types,
 * the Llama q/k row permutation (and its absence for Qwen2), f16/bf16 rounding. A real Qwen2.5
 * tokenizer (../shared/data/tokenizer/qwen2.5, when present) must tokenize like HF's. Bad options,
 * a missing folder and unwritable outputs fail with clear errors and leave no partial file.
 *
 * Without node-llama-cpp's binary the llama.cpp checks print one line saying why they skipped.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Token } from 'node-llama-cpp';
import yargs from 'yargs';
import { exportGgufCommand } from '../../lib/cli/commands/ExportGgufCommand.js';
import { exportGguf } from '../../lib/export/exportGguf.js';
import { loadModel } from '../../lib/index.js';
import { MotifError } from '../../lib/native/errors.js';
import { ggufTensorF32, ggufValue, readGguf } from '../helpers/gguf-reader.js';
import { writeTinyModel } from '../helpers/tiny-model.js';
import { makeRandomModel, type RandomModelOptions, torchAvailable } from '../helpers/torch-reference.js';

type NodeLlamaCpp = typeof import('node-llama-cpp');
type Llama = Awaited<ReturnType<NodeLlamaCpp['getLlama']>>;

let nlc: NodeLlamaCpp | undefined;
let llama: Llama | undefined;
let llamaSkip: string | undefined;
try {
  nlc = await import('node-llama-cpp');
  llama = await nlc.getLlama({
    gpu: false,
    build: 'never',
    skipDownload: true,
    maxThreads: 2,
    logLevel: nlc.LlamaLogLevel.error,
    progressLogs: false,
  });
} catch (err) {
  llamaSkip = `node-llama-cpp cannot be loaded (${String((err as Error)?.message ?? err).split('\n')[0]})`;
  console.log(`# gguf: llama.cpp checks skipped: ${llamaSkip}`);
}

const haveTorch = torchAvailable();
const PROMPT = Array.from({ length: 24 }, (_, i) => (i * 37 + 11) % 97);
const NEW_TOKENS = 16;

interface Case {
  name: string;
  torch: RandomModelOptions;
  tiny: Parameters<typeof writeTinyModel>[1];
}

const CASES: Case[] = [
  {
    name: 'qwen2 GQA 4:1, tied',
    torch: { arch: 'qwen2', hidden: 64, intermediate: 96, layers: 2, heads: 8, kvHeads: 2, vocab: 211, tie: true },
    tiny: { arch: 'qwen2', hidden: 32, intermediate: 48, layers: 2, heads: 4, kvHeads: 1, vocab: 113, tie: true },
  },
  {
    name: 'llama GQA 4:1, untied (q/k permutation)',
    torch: { arch: 'llama', hidden: 64, intermediate: 96, layers: 2, heads: 8, kvHeads: 2, vocab: 211 },
    tiny: { arch: 'llama', hidden: 32, intermediate: 48, layers: 2, heads: 4, kvHeads: 1, vocab: 113 },
  },
  {
    name: 'llama head_dim 16 != hidden/heads, q/k/v/o and mlp biases, llama3 rope, tied',
    torch: {
      arch: 'llama',
      hidden: 48,
      intermediate: 80,
      layers: 2,
      heads: 4,
      kvHeads: 2,
      headDim: 16,
      vocab: 211,
      tie: true,
      attentionBias: true,
      mlpBias: true,
      ropeTheta: 500000,
      ropeScaling: {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 16,
      },
    },
    tiny: { arch: 'llama', hidden: 32, intermediate: 48, layers: 2, heads: 2, kvHeads: 2, vocab: 113, tie: true },
  },
  {
    name: 'qwen2 head_dim 16 != hidden/heads (written as llama), linear rope',
    torch: {
      arch: 'qwen2',
      hidden: 48,
      intermediate: 80,
      layers: 2,
      heads: 4,
      kvHeads: 1,
      headDim: 16,
      vocab: 211,
      ropeScaling: { rope_type: 'linear', factor: 2 },
    },
    tiny: { arch: 'qwen2', hidden: 48, intermediate: 64, layers: 2, heads: 6, kvHeads: 3, vocab: 113 },
  },
];

let tmp: string;
const dirs: string[] = [];

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-gguf-'));
  // Two model writers at a time (each make-model is one Python process).
  for (let i = 0; i < CASES.length; i += 2) {
    const made = await Promise.all(
      CASES.slice(i, i + 2).map((c, j) =>
        haveTorch
          ? makeRandomModel({ ...c.torch, maxPos: 128, seed: 11 + i + j }, path.join(tmp, `m${i + j}`))
          : writeTinyModel(path.join(tmp, `m${i + j}`), { ...c.tiny, seed: 11 + i + j }),
      ),
    );
    dirs.push(...made);
  }
});

after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Greedy continuation by repeated full forwards of this engine. */
async function engineGreedy(dir: string, prompt: number[], n: number): Promise<number[]> {
  const model = await loadModel(dir, { device: 'cpu', threads: 2 });
  try {
    const V = model.config.vocabSize;
    const tokens = [...prompt];
    const out: number[] = [];
    for (let s = 0; s < n; s++) {
      const logits = await model.forward(tokens);
      const row = logits.subarray((tokens.length - 1) * V, tokens.length * V);
      let best = 0;
      for (let j = 1; j < V; j++) if (row[j] > row[best]) best = j;
      out.push(best);
      tokens.push(best);
    }
    return out;
  } finally {
    await model.dispose();
  }
}

/** Greedy continuation by llama.cpp (F32 KV cache, no flash attention), run to the budget. */
async function llamaGreedy(gguf: string, prompt: number[], n: number): Promise<number[]> {
  const model = await llama!.loadModel({ modelPath: gguf });
  try {
    const ctx = await model.createContext({
      contextSize: prompt.length + n + 8,
      sequences: 1,
      threads: 2,
      flashAttention: false,
      experimentalKvCacheKeyType: 'F32',
      experimentalKvCacheValueType: 'F32',
    });
    try {
      const out: number[] = [];
      for await (const t of ctx.getSequence().evaluate(prompt as Token[], { temperature: 0, yieldEogToken: true })) {
        out.push(t);
        if (out.length >= n) break;
      }
      return out;
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** A safetensors file's tensor as f32 (F32 data), parsed here independently of lib/formats. */
function safetensorsF32(file: string, name: string): { shape: number[]; data: Float32Array } {
  const b = readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.toString('utf8', 8, 8 + n)) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const e = header[name];
  assert.ok(e, `${file} has ${name}`);
  assert.equal(e.dtype, 'F32');
  const start = 8 + n + e.data_offsets[0];
  const data = new Float32Array((e.data_offsets[1] - e.data_offsets[0]) / 4);
  for (let i = 0; i < data.length; i++) data[i] = b.readFloatLE(start + 4 * i);
  return { shape: e.shape, data };
}

function expectMotifError(code: string, pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof MotifError, `expected a MotifError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  };
}

describe('GGUF export loads in llama.cpp and gives the same greedy tokens', () => {
  CASES.forEach((c, i) => {
    it(c.name, { skip: llamaSkip }, async () => {
      const dir = dirs[i];
      const gguf = path.join(tmp, `m${i}.f32.gguf`);
      const r = await exportGguf({ modelDir: dir, outFile: gguf, dtype: 'f32' });
      assert.equal(r.tokenizer, 'placeholder');
      const prompt = PROMPT.map((t) => t % (haveTorch ? c.torch.vocab : (c.tiny?.vocab ?? 37)));
      const [ours, theirs] = [await engineGreedy(dir, prompt, NEW_TOKENS), await llamaGreedy(gguf, prompt, NEW_TOKENS)];
      assert.deepEqual(theirs, ours, `llama.cpp ${theirs.join(',')} vs motif-native ${ours.join(',')}`);
    });
  });
});

describe('GGUF file contents', () => {
  it('header, metadata and tensors of a Llama export, with the q/k permutation', async () => {
    const dir = dirs[1];
    const gguf = path.join(tmp, 'llama-meta.gguf');
    const progress: number[] = [];
    const r = await exportGguf({
      modelDir: dir,
      outFile: gguf,
      dtype: 'f32',
      onProgress: (p) => progress.push(p.bytesWritten),
    });
    const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    const f = readGguf(gguf);
    assert.equal(f.version, 3);
    assert.equal(r.fileBytes, f.bytes.length);
    const dataBytes = f.tensors.reduce((a, t) => a + t.dims.reduce((x, y) => x * y, 1) * 4, 0);
    assert.equal(progress.at(-1), dataBytes, 'progress ends at all tensor bytes');
    assert.ok(progress.every((b, i) => i === 0 || b >= progress[i - 1]));
    const u32 = (k: string) => {
      assert.equal(f.metadata.get(k)?.type, 4, `${k} is a uint32`);
      return ggufValue(f, k);
    };
    const f32 = (k: string) => {
      assert.equal(f.metadata.get(k)?.type, 6, `${k} is a float32`);
      return ggufValue(f, k) as number;
    };
    assert.equal(ggufValue(f, 'general.architecture'), 'llama');
    assert.equal(u32('general.file_type'), 0);
    assert.equal(u32('llama.block_count'), cfg.num_hidden_layers);
    assert.equal(u32('llama.embedding_length'), cfg.hidden_size);
    assert.equal(u32('llama.feed_forward_length'), cfg.intermediate_size);
    assert.equal(u32('llama.attention.head_count'), cfg.num_attention_heads);
    assert.equal(u32('llama.attention.head_count_kv'), cfg.num_key_value_heads);
    assert.equal(u32('llama.context_length'), cfg.max_position_embeddings);
    assert.equal(u32('llama.rope.dimension_count'), cfg.hidden_size / cfg.num_attention_heads);
    assert.equal(f32('llama.rope.freq_base'), Math.fround(cfg.rope_theta ?? 10000));
    assert.equal(f32('llama.attention.layer_norm_rms_epsilon'), Math.fround(cfg.rms_norm_eps ?? 1e-6));
    assert.equal(ggufValue(f, 'tokenizer.ggml.model'), 'gpt2');
    assert.equal(ggufValue(f, 'tokenizer.ggml.pre'), 'llama-bpe');
    const tokens = ggufValue(f, 'tokenizer.ggml.tokens') as string[];
    assert.equal(tokens.length, cfg.vocab_size);
    assert.equal(new Set(tokens).size, tokens.length, 'token texts are unique');
    assert.equal(u32('tokenizer.ggml.eos_token_id'), cfg.vocab_size - 1);
    assert.equal((ggufValue(f, 'tokenizer.ggml.token_type') as number[]).length, cfg.vocab_size);
    assert.deepEqual(ggufValue(f, 'tokenizer.ggml.merges'), []);

    const L = cfg.num_hidden_layers;
    const expected = ['token_embd.weight', 'output_norm.weight', 'output.weight'];
    for (let l = 0; l < L; l++)
      for (const t of [
        'attn_norm',
        'attn_q',
        'attn_k',
        'attn_v',
        'attn_output',
        'ffn_norm',
        'ffn_gate',
        'ffn_up',
        'ffn_down',
      ])
        expected.push(`blk.${l}.${t}.weight`);
    assert.deepEqual(f.tensors.map((t) => t.name).sort(), expected.sort());
    const C = cfg.hidden_size;
    const H = cfg.num_attention_heads;
    const Hkv = cfg.num_key_value_heads;
    const D = C / H;
    const byName = new Map(f.tensors.map((t) => [t.name, t]));
    assert.deepEqual(byName.get('token_embd.weight')?.dims, [C, cfg.vocab_size]);
    assert.deepEqual(byName.get('blk.0.attn_k.weight')?.dims, [C, Hkv * D]);
    assert.deepEqual(byName.get('blk.0.ffn_down.weight')?.dims, [cfg.intermediate_size, C]);
    assert.equal(byName.get('blk.0.attn_norm.weight')?.type, 0);

    // llama.cpp's LLAMA rope rotates adjacent pairs; HF rotates halves: within each head, GGUF row
    // 2i + j must be HF row j * D/2 + i (q with H heads, k with Hkv heads).
    const st = path.join(dir, 'model.safetensors');
    for (const [hf, name, heads] of [
      ['model.layers.1.self_attn.q_proj.weight', 'blk.1.attn_q.weight', H],
      ['model.layers.1.self_attn.k_proj.weight', 'blk.1.attn_k.weight', Hkv],
    ] as const) {
      const src = safetensorsF32(st, hf).data;
      const dst = ggufTensorF32(f, name);
      for (let h = 0; h < heads; h++)
        for (let i = 0; i < D / 2; i++)
          for (let j = 0; j < 2; j++)
            for (let c = 0; c < C; c++)
              assert.equal(
                dst[(h * D + 2 * i + j) * C + c],
                src[(h * D + j * (D / 2) + i) * C + c],
                `${name} h${h} i${i} j${j}`,
              );
    }
    const v = safetensorsF32(st, 'model.layers.0.self_attn.v_proj.weight').data;
    assert.deepEqual(ggufTensorF32(f, 'blk.0.attn_v.weight'), v);

    if (nlc) {
      const info = await nlc.readGgufFileInfo(gguf, { logWarnings: false });
      assert.equal(info.version, 3);
      assert.equal(info.metadata.general.architecture, 'llama');
      assert.equal((info.metadata as unknown as { llama: { block_count: number } }).llama.block_count, L);
      assert.equal(info.tensorInfo?.length, expected.length);
    }
  });

  it('Qwen2 q/k are not permuted; biases and 1-D tensors stay f32; f16 and bf16 round to nearest', async () => {
    const dir = dirs[0];
    const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    const st = path.join(dir, 'model.safetensors');
    for (const dtype of ['f16', 'bf16'] as const) {
      const gguf = path.join(tmp, `qwen-${dtype}.gguf`);
      const r = await exportGguf({ modelDir: dir, outFile: gguf, dtype });
      assert.equal(r.dtype, dtype);
      const f = readGguf(gguf);
      assert.equal(ggufValue(f, 'general.architecture'), 'qwen2');
      assert.equal(ggufValue(f, 'general.file_type'), dtype === 'f16' ? 1 : 32);
      assert.equal(ggufValue(f, 'tokenizer.ggml.pre'), 'qwen2');
      const types = new Map(f.tensors.map((t) => [t.name, t.type]));
      assert.equal(types.get('blk.0.attn_q.weight'), dtype === 'f16' ? 1 : 30);
      assert.equal(types.get('token_embd.weight'), dtype === 'f16' ? 1 : 30);
      assert.equal(types.get('blk.0.attn_q.bias'), 0);
      assert.equal(types.get('output_norm.weight'), 0);
      assert.equal(types.has('output.weight'), false, 'tied: llama.cpp reuses token_embd');
      const src = safetensorsF32(st, 'model.layers.0.self_attn.q_proj.weight').data;
      const got = ggufTensorF32(f, 'blk.0.attn_q.weight');
      // Same row order as the checkpoint (no permutation for Qwen2), within half an ulp of the format.
      const halfUlp = dtype === 'f16' ? 2 ** -11 : 2 ** -8;
      for (let i = 0; i < src.length; i++) {
        const tol = Math.abs(src[i]) * halfUlp + (dtype === 'f16' ? 2 ** -25 : 0);
        assert.ok(Math.abs(got[i] - src[i]) <= tol, `${dtype} element ${i}: ${got[i]} vs ${src[i]}`);
      }
      assert.deepEqual(
        ggufTensorF32(f, 'blk.0.attn_q.bias'),
        safetensorsF32(st, 'model.layers.0.self_attn.q_proj.bias').data,
      );
      assert.equal(ggufValue(f, 'qwen2.block_count'), cfg.num_hidden_layers);
      if (llama) {
        const model = await llama.loadModel({ modelPath: gguf });
        assert.equal(model.fileInfo.metadata.general.architecture, 'qwen2');
        await model.dispose();
      }
    }
  });

  const QWEN_TOKENIZER = path.resolve('../shared/data/tokenizer/qwen2.5');
  const tokSkip = !existsSync(path.join(QWEN_TOKENIZER, 'tokenizer.json'))
    ? `no Qwen2.5 tokenizer at ${QWEN_TOKENIZER}`
    : llamaSkip;
  it('a real Qwen2.5 tokenizer: llama.cpp tokenizes like HF tokenizers; special ids and chat template', {
    skip: tokSkip,
  }, async () => {
    const dir = await writeTinyModel(path.join(tmp, 'qwen-tok'), {
      arch: 'qwen2',
      hidden: 8,
      intermediate: 8,
      layers: 1,
      heads: 2,
      kvHeads: 1,
      vocab: 151936,
      tie: true,
    });
    for (const f of ['tokenizer.json', 'tokenizer_config.json'])
      await copyFile(path.join(QWEN_TOKENIZER, f), path.join(dir, f));
    const gguf = path.join(tmp, 'qwen-tok.gguf');
    const r = await exportGguf({ modelDir: dir, outFile: gguf, dtype: 'bf16' });
    assert.equal(r.tokenizer, 'tokenizer.json');
    const { Tokenizer } = await import('@huggingface/tokenizers');
    const tj = JSON.parse(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
    const tc = JSON.parse(readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
    const hf = new Tokenizer(tj, tc);
    const model = await llama!.loadModel({ modelPath: gguf, vocabOnly: true });
    try {
      const texts = [
        'Hello world, 123 4567!',
        '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
        '  multiple   spaces\tand\ttabs\n\nnewlines',
        'ünïcödé 日本語 🙂 \\boxed{\\frac{1}{2}}',
        "I'm sure they'll say we've done it",
      ];
      for (const t of texts) {
        assert.deepEqual([...model.tokenize(t, true)], hf.encode(t).ids, JSON.stringify(t));
        assert.equal(model.detokenize(model.tokenize(t, true), true), t);
      }
      const imEnd = hf.token_to_id('<|im_end|>');
      assert.equal(model.tokens.eos, imEnd);
      const md = model.fileInfo.metadata as unknown as {
        tokenizer: { chat_template: string; ggml: { padding_token_id: number; token_type: number[] } };
      };
      assert.equal(md.tokenizer.chat_template, tc.chat_template);
      assert.equal(md.tokenizer.ggml.padding_token_id, hf.token_to_id('<|endoftext|>'));
      assert.equal(md.tokenizer.ggml.token_type[imEnd as number], 3, '<|im_end|> is a control token');
      assert.equal(md.tokenizer.ggml.token_type[151935], 5, 'ids past the tokenizer are unused padding');
    } finally {
      await model.dispose();
    }
  });
});

describe('export errors', () => {
  it('rejects bad options', async () => {
    await assert.rejects(
      exportGguf({ modelDir: dirs[0], outFile: path.join(tmp, 'x.gguf'), dtype: 'f8' as never }),
      expectMotifError('ERR_MOTIF_INVALID_ARGUMENT', /'f32', 'f16' or 'bf16' for dtype but received "f8"/),
    );
    await assert.rejects(
      exportGguf({ modelDir: '', outFile: 'x.gguf' }),
      expectMotifError('ERR_MOTIF_INVALID_ARGUMENT', /modelDir/),
    );
  });

  it('a missing folder is an IO error naming it', async () => {
    const missing = path.join(tmp, 'no-such-model');
    await assert.rejects(
      exportGguf({ modelDir: missing, outFile: path.join(tmp, 'x.gguf') }),
      expectMotifError('ERR_MOTIF_IO', new RegExp(`${missing}.*does not exist`)),
    );
  });

  it('an unwritable output path is an IO error, and no partial file is left', async () => {
    const noDir = path.join(tmp, 'no-such-dir', 'out.gguf');
    await assert.rejects(
      exportGguf({ modelDir: dirs[0], outFile: noDir }),
      expectMotifError('ERR_MOTIF_IO', /cannot write .*out\.gguf: the folder .*no-such-dir does not exist/),
    );
    const aFile = path.join(tmp, 'plain-file');
    await writeFile(aFile, 'x');
    await assert.rejects(
      exportGguf({ modelDir: dirs[0], outFile: path.join(aFile, 'out.gguf') }),
      expectMotifError('ERR_MOTIF_IO', /cannot write .*plain-file.*is not a folder/),
    );
    await assert.rejects(
      exportGguf({ modelDir: dirs[0], outFile: tmp }),
      expectMotifError('ERR_MOTIF_IO', /is a folder/),
    );
    assert.deepEqual(
      readdirSync(tmp).filter((n) => n.includes('.tmp-')),
      [],
    );
  });

  it('a tensor that does not match config.json is a format error naming file and tensor; the old file stays', async () => {
    const dir = path.join(tmp, 'bad-shape');
    await writeTinyModel(dir, { arch: 'llama', hidden: 16, intermediate: 24, heads: 4, kvHeads: 2, vocab: 37 });
    const cfgPath = path.join(dir, 'config.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    await writeFile(cfgPath, JSON.stringify({ ...cfg, intermediate_size: 32 }));
    const out = path.join(tmp, 'keep.gguf');
    await writeFile(out, 'previous contents');
    await assert.rejects(
      exportGguf({ modelDir: dir, outFile: out }),
      expectMotifError(
        'ERR_MOTIF_FORMAT',
        /model\.safetensors: tensor 'model\.layers\.0\.mlp\.gate_proj\.weight' has shape \[24, 16\], expected \[32, 16\] from config\.json/,
      ),
    );
    assert.equal(readFileSync(out, 'utf8'), 'previous contents');
  });

  it('the export-gguf command: bad --dtype, missing folder, success line', async () => {
    const run = async (args: string[]) => {
      const logs: string[] = [];
      const origLog = console.log;
      console.log = (...a: unknown[]) => logs.push(a.join(' '));
      try {
        await yargs(args)
          .command(exportGgufCommand)
          .strict()
          .exitProcess(false)
          .fail((msg, err) => {
            throw err ?? new Error(msg);
          })
          .parseAsync();
      } finally {
        console.log = origLog;
      }
      return logs.join('\n');
    };
    const out = path.join(tmp, 'cli.gguf');
    await assert.rejects(
      run(['export-gguf', '--model', dirs[0], '--out', out, '--dtype', 'int4', '--quiet']),
      expectMotifError('ERR_MOTIF_INVALID_ARGUMENT', /--dtype/),
    );
    await assert.rejects(
      run(['export-gguf', '--model', path.join(tmp, 'nope'), '--out', out, '--quiet']),
      expectMotifError('ERR_MOTIF_IO', /nope/),
    );
    const line = await run(['export-gguf', '--model', dirs[0], '--out', out, '--dtype', 'f16', '--quiet']);
    assert.match(line, /wrote .*cli\.gguf: qwen2, f16, \d+ tensors, .* placeholder vocabulary/);
    assert.equal(readGguf(out).version, 3);
  });
});
