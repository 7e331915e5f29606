// The safetensors writer (layout, dtypes rounded as hand-checked bit patterns, atomic writes) and PEFT
// adapter files: a bit-exact round trip, adapter_config.json as HF PEFT writes it, adapters written
// by HF PEFT (their names, F16/BF16, a newer PEFT's extra keys), and errors naming file and tensor.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { SafetensorsFile } from '../../lib/formats/safetensors.js';
import { encodeSafetensors, writeSafetensors } from '../../lib/formats/safetensors-write.js';
import type { MotifError } from '../../lib/native/errors.js';
import {
  adapterShapes,
  loadAdapter,
  loraTensorName,
  readAdapter,
  saveAdapter,
  writeAdapterFiles,
} from '../../lib/train/peft.js';
import type { LoraConfig } from '../../lib/train/types.js';
import { FAKE_CONFIG, FakeTrainable, hash01 } from '../helpers/fake-trainable.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-peft-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const LORA: LoraConfig = {
  rank: 3,
  alpha: 6,
  targets: ['q_proj', 'k_proj', 'o_proj', 'up_proj', 'down_proj'],
  rslora: true,
  seed: 1,
};

function headerOf(bytes: Uint8Array): {
  len: number;
  json: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
} {
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { len, json: JSON.parse(Buffer.from(bytes.subarray(8, 8 + len)).toString('utf8')) };
}

describe('safetensors writer', () => {
  it('sorted header, 8-byte aligned data, contiguous offsets, wider dtypes first', () => {
    const bytes = encodeSafetensors(
      {
        zeta: { data: new Float32Array([1, 2, 3]), shape: [3], dtype: 'F16' },
        alpha: { data: new Float32Array([1, 0.1, 65520]), shape: [1, 3], dtype: 'BF16' },
        mid: { data: new Float32Array([0.5, -2]), shape: [2] },
      },
      { metadata: { format: 'pt' } },
    );
    const { len, json } = headerOf(bytes);
    assert.equal((8 + len) % 8, 0);
    assert.deepEqual(Object.keys(json), ['__metadata__', 'alpha', 'mid', 'zeta']);
    // F32 first, then the 2-byte tensors by name.
    assert.deepEqual(json.mid?.data_offsets, [0, 8]);
    assert.deepEqual(json.alpha?.data_offsets, [8, 14]);
    assert.deepEqual(json.zeta?.data_offsets, [14, 20]);
    assert.equal(bytes.length, 8 + len + 20);
    const data = new DataView(bytes.buffer, bytes.byteOffset + 8 + len);
    assert.equal(data.getFloat32(4, true), -2);
    // bf16: 1.0 = 0x3F80; 0.1 = 0x3DCCCCCD rounds to 0x3DCD; 65520 = 0x477FF000 rounds to 0x4780.
    assert.deepEqual(
      [data.getUint16(8, true), data.getUint16(10, true), data.getUint16(12, true)],
      [0x3f80, 0x3dcd, 0x4780],
    );
    // f16: 1 = 0x3C00, 2 = 0x4000, 3 = 0x4200.
    assert.deepEqual(
      [data.getUint16(14, true), data.getUint16(16, true), data.getUint16(18, true)],
      [0x3c00, 0x4000, 0x4200],
    );
  });

  it('writes atomically and reads back through the reader; errors name the tensor', async () => {
    const file = path.join(tmp, 'w.safetensors');
    const x = new Float32Array([Math.PI, -0, 1e-40, 3.4e38]);
    await writeSafetensors(file, new Map([['t', { data: x, shape: [2, 2] }]]));
    const f = await SafetensorsFile.open(file);
    const t = await f.read('t');
    await f.close();
    assert.deepEqual([...t.shape], [2, 2]);
    assert.deepEqual(
      new Uint32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + 16)),
      new Uint32Array(x.buffer),
    );
    assert.deepEqual(
      (await readdir(tmp)).filter((n) => n.includes('.tmp-')),
      [],
    );
    await assert.rejects(
      writeSafetensors(file, { bad: { data: new Float32Array(3), shape: [2, 2] } }),
      /tensor 'bad' has shape \[2, 2\] \(4 values\) but 3 values/,
    );
    await assert.rejects(
      writeSafetensors(path.join(tmp, 'no', 'such', 'dir.safetensors'), { t: { data: x, shape: [4] } }),
      (e: MotifError) => e.code === 'ERR_MOTIF_IO' && e.message.includes('dir.safetensors'),
    );
  });
});

async function randomModel(lora: LoraConfig): Promise<FakeTrainable> {
  const m = new FakeTrainable({ answers: {} });
  await m.createLora(lora);
  const t = await m.getAdapterTensors();
  let k = 0;
  for (const [, v] of t) {
    for (let i = 0; i < v.length; i++) v[i] = (hash01(k, i) - 0.5) * 10 ** Math.floor(hash01(i, k) * 10 - 5);
    k++;
  }
  const first = t.values().next().value as Float32Array;
  first.set([-0, 1.4e-45, -3.4028234663852886e38]);
  await m.setAdapterTensors(t);
  return m;
}

describe('PEFT adapters', () => {
  it('round-trips bit-exactly', async () => {
    const a = await randomModel(LORA);
    const dir = path.join(tmp, 'adapter');
    await saveAdapter(a, dir, { baseModel: 'Qwen/Qwen2.5-3B-Instruct' });
    const b = new FakeTrainable({ answers: {} });
    const lora = await loadAdapter(b, dir);
    assert.deepEqual({ ...lora, seed: 0 }, { ...LORA, seed: 0 });
    const ta = await a.getAdapterTensors();
    const tb = await b.getAdapterTensors();
    assert.deepEqual([...tb.keys()].sort(), [...ta.keys()].sort());
    for (const [k, v] of ta)
      assert.deepEqual(new Uint32Array((tb.get(k) as Float32Array).buffer), new Uint32Array(v.buffer), k);
    // Saving again replaces the folder; nothing temporary is left.
    await saveAdapter(a, dir);
    assert.deepEqual(
      (await readdir(tmp)).filter((n) => n.startsWith('.')),
      [],
    );
  });

  it('writes adapter_config.json as HF PEFT does, and PEFT tensor names and shapes', async () => {
    const dir = path.join(tmp, 'adapter');
    await saveAdapter(await randomModel(LORA), dir, { baseModel: 'Qwen/Qwen2.5-3B-Instruct' });
    const text = await readFile(path.join(dir, 'adapter_config.json'), 'utf8');
    const cfg = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(Object.keys(cfg), [...Object.keys(cfg)].sort(), 'keys sorted as json.dumps(sort_keys=True)');
    assert.match(text, /^\{\n {2}"alpha_pattern": \{\},\n/);
    assert.match(text, /"lora_dropout": 0\.0,/);
    assert.equal(cfg.peft_type, 'LORA');
    assert.equal(cfg.task_type, 'CAUSAL_LM');
    assert.equal(cfg.r, 3);
    assert.equal(cfg.lora_alpha, 6);
    assert.deepEqual(cfg.target_modules, ['q_proj', 'k_proj', 'o_proj', 'up_proj', 'down_proj']);
    assert.equal(cfg.bias, 'none');
    assert.equal(cfg.use_rslora, true);
    assert.equal(cfg.use_dora, false);
    assert.equal(cfg.fan_in_fan_out, false);
    assert.equal(cfg.init_lora_weights, true);
    assert.equal(cfg.inference_mode, true);
    assert.equal(cfg.base_model_name_or_path, 'Qwen/Qwen2.5-3B-Instruct');
    assert.equal(cfg.modules_to_save, null);
    const f = await SafetensorsFile.open(path.join(dir, 'adapter_model.safetensors'));
    try {
      assert.equal(f.metadata.format, 'pt');
      const q = f.get('base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight');
      assert.deepEqual([q.dtype, ...q.shape], ['F32', 3, 8]);
      assert.deepEqual([...f.get('base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight').shape], [4, 3]);
      assert.deepEqual([...f.get('base_model.model.model.layers.0.mlp.down_proj.lora_A.weight').shape], [3, 12]);
      assert.deepEqual([...f.get('base_model.model.model.layers.0.mlp.up_proj.lora_B.weight').shape], [12, 3]);
      assert.equal(f.tensors.size, 2 * 5 * 2);
    } finally {
      await f.close();
    }
  });

  it('loads an adapter written by HF PEFT (BF16/F16, newer config keys, .default names)', async () => {
    const dir = path.join(tmp, 'hf');
    await mkdir(dir, { recursive: true });
    await writeFile(
      path.join(dir, 'adapter_config.json'),
      JSON.stringify({
        peft_type: 'LORA',
        task_type: 'CAUSAL_LM',
        r: 2,
        lora_alpha: 16,
        lora_dropout: 0.05,
        target_modules: ['v_proj', 'gate_proj'],
        bias: 'none',
        use_rslora: false,
        use_dora: false,
        peft_version: '0.17.1',
        target_parameters: null,
        layers_to_transform: null,
        rank_pattern: {},
        alpha_pattern: {},
      }),
    );
    const tensors: Record<string, { data: Float32Array; shape: number[]; dtype: 'BF16' | 'F16' }> = {};
    for (const [name, shape] of adapterShapes(FAKE_CONFIG, { rank: 2, targets: ['v_proj', 'gate_proj'] })) {
      const data = Float32Array.from({ length: (shape[0] as number) * (shape[1] as number) }, (_, i) => 0.25 * i - 1);
      const hfName = name.includes('gate_proj') ? name.replace('.weight', '.default.weight') : name;
      tensors[hfName] = { data, shape, dtype: name.includes('lora_A') ? 'BF16' : 'F16' };
    }
    await writeFile(path.join(dir, 'adapter_model.safetensors'), encodeSafetensors(tensors));
    const m = new FakeTrainable({ answers: {} });
    const lora = await loadAdapter(m, dir);
    assert.deepEqual(lora, { rank: 2, alpha: 16, targets: ['v_proj', 'gate_proj'], rslora: false, seed: 0 });
    const got = await m.getAdapterTensors();
    assert.deepEqual(
      [...(got.get(loraTensorName(1, 'gate_proj', 'A')) as Float32Array).slice(0, 4)],
      [-1, -0.75, -0.5, -0.25],
    );
  });

  it('reports the file and tensor of every mismatch', async () => {
    const dir = path.join(tmp, 'bad');
    await mkdir(dir, { recursive: true });
    await writeAdapterFiles(dir, LORA, await (await randomModel(LORA)).getAdapterTensors(), FAKE_CONFIG);
    // A tensor with the wrong shape.
    const file = path.join(dir, 'adapter_model.safetensors');
    const wrong: Record<string, { data: Float32Array; shape: number[] }> = {};
    for (const [name, shape] of adapterShapes(FAKE_CONFIG, LORA))
      wrong[name] =
        name === loraTensorName(1, 'o_proj', 'B')
          ? { data: new Float32Array(9), shape: [3, 3] }
          : { data: new Float32Array((shape[0] as number) * (shape[1] as number)), shape };
    await writeFile(file, encodeSafetensors(wrong));
    await assert.rejects(readAdapter(dir, FAKE_CONFIG), (e: MotifError) => {
      assert.equal(e.code, 'ERR_MOTIF_FORMAT');
      assert.match(
        e.message,
        /adapter_model\.safetensors: tensor 'base_model\.model\.model\.layers\.1\.self_attn\.o_proj\.lora_B\.weight' has shape \[3, 3\], expected \[8, 3\]/,
      );
      return true;
    });
    // A missing tensor, an unknown tensor, a layer past the model's.
    delete wrong[loraTensorName(1, 'o_proj', 'B')];
    await writeFile(file, encodeSafetensors(wrong));
    await assert.rejects(
      readAdapter(dir, FAKE_CONFIG),
      /tensor 'base_model\.model\.model\.layers\.1\.self_attn\.o_proj\.lora_B\.weight' is missing/,
    );
    await writeFile(
      file,
      encodeSafetensors({
        ...wrong,
        'base_model.model.lm_head.lora_A.weight': { data: new Float32Array(1), shape: [1] },
      }),
    );
    await assert.rejects(
      readAdapter(dir, FAKE_CONFIG),
      /tensor 'base_model\.model\.lm_head\.lora_A\.weight' is not a LoRA matrix/,
    );
    await writeFile(
      file,
      encodeSafetensors({
        'base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight': { data: new Float32Array(1), shape: [1] },
      }),
    );
    await assert.rejects(
      readAdapter(dir, FAKE_CONFIG),
      /layers\.7\.self_attn\.q_proj\.lora_A\.weight' is for layer 7, but config\.json has 2 layers/,
    );
    // Config problems.
    const cfgFile = path.join(dir, 'adapter_config.json');
    await writeFile(cfgFile, '{ not json');
    await assert.rejects(
      readAdapter(dir, FAKE_CONFIG),
      (e: MotifError) => e.code === 'ERR_MOTIF_FORMAT' && e.message.startsWith(cfgFile),
    );
    await writeFile(cfgFile, JSON.stringify({ peft_type: 'LORA', r: 3, lora_alpha: 6, use_dora: true }));
    await assert.rejects(
      readAdapter(dir, FAKE_CONFIG),
      (e: MotifError) => e.code === 'ERR_MOTIF_UNSUPPORTED' && /DoRA/.test(e.message),
    );
    await writeFile(cfgFile, JSON.stringify({ peft_type: 'IA3' }));
    await assert.rejects(readAdapter(dir, FAKE_CONFIG), /peft_type is "IA3"; only LoRA/);
    await rm(cfgFile);
    await assert.rejects(
      readAdapter(dir, FAKE_CONFIG),
      (e: MotifError) => e.code === 'ERR_MOTIF_IO' && e.message.includes('adapter_config.json'),
    );
    await assert.rejects(readAdapter(path.join(tmp, 'nothing-here'), FAKE_CONFIG), /adapter_config\.json: cannot read/);
  });
});
