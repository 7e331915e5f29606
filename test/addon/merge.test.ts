/**
 * merge.test.ts — `mergeAdapter` / `motif-native merge`: a model with a LoRA adapter merged into its
 * weights gives the same logits as the base model running the adapter unmerged (the engine's
 * forward with the adapter is itself checked against PyTorch in grpo-vs-torch.test.ts); plain
 * LoRA and rsLoRA scaling; f32 and bf16 outputs; untouched tensors are copied byte for byte; a GGUF
 * output holds the merged weights; refusals (existing output, output = input, mismatched adapter)
 * name the flag or file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { mergeAdapter } from '../../lib/export/mergeAdapter.js';
import { SafetensorsFile } from '../../lib/formats/safetensors.js';
import { loadModel } from '../../lib/index.js';
import { saveAdapter } from '../../lib/train/peft.js';
import type { LoraConfig } from '../../lib/train/types.js';
import { ggufTensorF32, readGguf } from '../helpers/gguf-reader.js';
import { rng, writeTinyModel } from '../helpers/tiny-model.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const V = 41;
const PROMPT = [3, 17, 5, 40, 9, 22, 1, 30, 12];
let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-merge-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

/**
 * Writes a PEFT adapter for the model in `modelDir` with random non-zero A and B (PEFT initializes B
 * to zeros, which would make the merge a no-op), and returns the logits of PROMPT with it applied
 * unmerged.
 */
async function adapterAndLogits(modelDir: string, adapterDir: string, lora: LoraConfig): Promise<Float32Array> {
  const model = await loadModel(modelDir, { device: 'cpu', threads: 1 });
  try {
    await model.createLora(lora);
    const rand = rng(lora.seed + 100);
    const tensors = await model.getAdapterTensors();
    for (const t of tensors.values()) for (let i = 0; i < t.length; i++) t[i] = (rand() * 2 - 1) * 0.3;
    await model.setAdapterTensors(tensors);
    await saveAdapter(model, adapterDir);
    return await model.forward(PROMPT);
  } finally {
    await model.dispose();
  }
}

async function logitsOf(modelDir: string): Promise<Float32Array> {
  const model = await loadModel(modelDir, { device: 'cpu', threads: 1 });
  try {
    return await model.forward(PROMPT);
  } finally {
    await model.dispose();
  }
}

const ALL: LoraConfig['targets'] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

describe('merge', () => {
  for (const c of [
    { name: 'qwen2, all seven targets, alpha/r', arch: 'qwen2' as const, rslora: false, targets: ALL },
    {
      name: 'llama tied, q/v/down, rsLoRA',
      arch: 'llama' as const,
      rslora: true,
      targets: ['q_proj', 'v_proj', 'down_proj'],
    },
  ]) {
    it(`${c.name}: merged logits equal the unmerged adapter's`, async () => {
      const base = await writeTinyModel(path.join(tmp, `${c.arch}-base`), {
        arch: c.arch,
        vocab: V,
        tie: c.arch === 'llama',
      });
      const adapter = path.join(tmp, `${c.arch}-adapter`);
      const lora = { rank: 3, alpha: 5, targets: c.targets as LoraConfig['targets'], rslora: c.rslora, seed: 4 };
      const withAdapter = await adapterAndLogits(base, adapter, lora);
      const plain = await logitsOf(base);
      assert.ok(relErr(plain, withAdapter) > 1e-2, 'the adapter must change the logits for this test to mean anything');

      const out = path.join(tmp, `${c.arch}-merged`);
      const result = await mergeAdapter({ modelDir: base, adapterDir: adapter, out });
      assert.equal(result.mergedTensors, 2 * c.targets.length);
      const merged = await logitsOf(out);
      const err = relErr(merged, withAdapter);
      assert.ok(err <= 1e-5, `merged vs unmerged logits: relative L2 error ${err}`);

      // Tensors the adapter does not touch are copied bit for bit; the folder's other files come along.
      const a = await SafetensorsFile.open(path.join(base, 'model.safetensors'));
      const b = await SafetensorsFile.open(path.join(out, 'model.safetensors'));
      try {
        assert.deepEqual([...b.tensors.keys()].sort(), [...a.tensors.keys()].sort());
        for (const name of a.tensors.keys()) {
          const same = Buffer.from((await a.read(name)).data).equals(Buffer.from((await b.read(name)).data));
          const adapted = c.targets.some((t) => name.endsWith(`.${t}.weight`));
          assert.equal(same, !adapted, `${name}: ${adapted ? 'should have changed' : 'should be unchanged'}`);
        }
      } finally {
        await a.close();
        await b.close();
      }
      assert.deepEqual(
        await readFile(path.join(out, 'config.json'), 'utf8'),
        await readFile(path.join(base, 'config.json'), 'utf8'),
      );
    });
  }

  it('bf16 output: logits within bf16 rounding of the unmerged adapter', async () => {
    const base = path.join(tmp, 'qwen2-base');
    const out = path.join(tmp, 'qwen2-merged-bf16');
    await mergeAdapter({ modelDir: base, adapterDir: path.join(tmp, 'qwen2-adapter'), out, dtype: 'bf16' });
    const file = await SafetensorsFile.open(path.join(out, 'model.safetensors'));
    try {
      for (const t of file.tensors.values()) assert.equal(t.dtype, 'BF16', t.name);
    } finally {
      await file.close();
    }
    const withAdapter = await adapterAndLogitsCached();
    const err = relErr(await logitsOf(out), withAdapter);
    assert.ok(err <= 2e-2, `bf16 merged vs unmerged logits: relative L2 error ${err}`);
  });

  it('GGUF output holds the merged weights (through the CLI)', async () => {
    const out = path.join(tmp, 'merged.gguf');
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(ROOT, 'lib/cli/cli.ts'),
        'merge',
        '--model',
        path.join(tmp, 'qwen2-base'),
        '--adapter',
        path.join(tmp, 'qwen2-adapter'),
        '--out',
        out,
        '--quiet',
      ],
      { encoding: 'utf8', cwd: ROOT },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /merged.gguf \(gguf\): 14 projections merged/);
    const gguf = readGguf(out);
    const st = await SafetensorsFile.open(path.join(tmp, 'qwen2-merged', 'model.safetensors'));
    try {
      for (const [hf, gg] of [
        ['model.layers.1.mlp.down_proj.weight', 'blk.1.ffn_down.weight'],
        ['model.layers.0.self_attn.q_proj.weight', 'blk.0.attn_q.weight'],
      ]) {
        const want = new Float32Array((await st.read(hf)).data.slice().buffer);
        assert.deepEqual(ggufTensorF32(gguf, gg), want, gg);
      }
    } finally {
      await st.close();
    }
    // No scratch folder is left beside the output.
    assert.deepEqual(
      (await readdir(tmp)).filter((n) => n.includes('.tmp-')),
      [],
    );
  });

  it('refuses to overwrite or to write over its inputs, and checks the adapter against the model', async () => {
    const base = path.join(tmp, 'qwen2-base');
    const adapter = path.join(tmp, 'qwen2-adapter');
    await assert.rejects(
      mergeAdapter({ modelDir: base, adapterDir: adapter, out: path.join(tmp, 'qwen2-merged') }),
      /already exists.*--overwrite/,
    );
    await assert.rejects(
      mergeAdapter({ modelDir: base, adapterDir: adapter, out: base, overwrite: true }),
      /is the model folder/,
    );
    await assert.rejects(
      mergeAdapter({ modelDir: base, adapterDir: adapter, out: adapter, overwrite: true }),
      /is the adapter folder/,
    );
    const other = await writeTinyModel(path.join(tmp, 'wider'), { hidden: 24, heads: 4, kvHeads: 2, vocab: V });
    await assert.rejects(
      mergeAdapter({ modelDir: other, adapterDir: adapter, out: path.join(tmp, 'never') }),
      /adapter_model\.safetensors: tensor '.*' has shape \[.*\], expected/,
    );
    await mergeAdapter({ modelDir: base, adapterDir: adapter, out: path.join(tmp, 'qwen2-merged'), overwrite: true });
  });
});

let cachedLogits: Float32Array | undefined;
/** The qwen2 case's unmerged logits (recomputed from its saved adapter). */
async function adapterAndLogitsCached(): Promise<Float32Array> {
  if (cachedLogits) return cachedLogits;
  const model = await loadModel(path.join(tmp, 'qwen2-base'), {
    device: 'cpu',
    threads: 1,
    adapter: path.join(tmp, 'qwen2-adapter'),
  });
  try {
    cachedLogits = await model.forward(PROMPT);
    return cachedLogits;
  } finally {
    await model.dispose();
  }
}
