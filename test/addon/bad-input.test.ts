/**
 * bad-input.test.ts — every kind of bad input the foundation promises to reject clearly:
 * missing or wrong folders and files, broken config.json, corrupt safetensors, bad tokens,
 * bad options, calls after dispose. Each must reject with a MotifError whose message names
 * the file / tensor / field and what was expected — never crash the process.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel, MotifError } from '../../lib/index.js';
import { safetensorsBytes, tinyModel, writeTinyModel } from '../helpers/tiny-model.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-bad-input-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let counter = 0;
async function freshModel(): Promise<string> {
  return writeTinyModel(path.join(tmp, `m${counter++}`));
}

async function rejects(p: Promise<unknown>, code: string, ...needles: string[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof MotifError, `expected a MotifError, got ${String(err)}`);
    assert.equal(err.code, code, `code of: ${err.message}`);
    for (const n of needles)
      assert.ok(err.message.includes(n), `message ${JSON.stringify(err.message)} should mention ${JSON.stringify(n)}`);
    return true;
  });
}

/** Rewrites model.safetensors with a hand-made header over the given data bytes. */
async function writeRawSafetensors(
  dir: string,
  header: object | string,
  data: Buffer,
  headerLen?: bigint,
): Promise<void> {
  const json = typeof header === 'string' ? header : JSON.stringify(header);
  const out = Buffer.alloc(8 + json.length + data.length);
  out.writeBigUInt64LE(headerLen ?? BigInt(json.length), 0);
  out.write(json, 8, 'utf8');
  data.copy(out, 8 + json.length);
  await writeFile(path.join(dir, 'model.safetensors'), out);
}

describe('loadModel rejects bad folders and files', () => {
  it('a folder that does not exist', async () => {
    const dir = path.join(tmp, 'nope');
    await rejects(loadModel(dir, { device: 'cpu' }), 'ERR_MOTIF_IO', dir, 'does not exist');
  });

  it('a file instead of a folder', async () => {
    const file = path.join(tmp, 'plain-file');
    await writeFile(file, 'x');
    await rejects(loadModel(file, { device: 'cpu' }), 'ERR_MOTIF_IO', 'not a folder');
  });

  it('a folder without config.json', async () => {
    const dir = await freshModel();
    await rm(path.join(dir, 'config.json'));
    await rejects(loadModel(dir, { device: 'cpu' }), 'ERR_MOTIF_IO', 'config.json', 'No such file');
  });

  it('config.json that is not JSON', async () => {
    const dir = await freshModel();
    await writeFile(path.join(dir, 'config.json'), '{"hidden_size": 16,\n  oops }');
    await rejects(loadModel(dir, { device: 'cpu' }), 'ERR_MOTIF_FORMAT', 'config.json', 'invalid JSON at line 2');
  });

  it('an unsupported architecture', async () => {
    const dir = await freshModel();
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ architectures: ['GPT2LMHeadModel'], n_embd: 16 }));
    await rejects(loadModel(dir, { device: 'cpu' }), 'ERR_MOTIF_UNSUPPORTED', 'GPT2LMHeadModel', 'Qwen2ForCausalLM');
  });

  it('a config.json missing a field, or with a field of the wrong type', async () => {
    const dir = await freshModel();
    const cfg = tinyModel().config;
    const { intermediate_size: _drop, ...missing } = cfg;
    await writeFile(path.join(dir, 'config.json'), JSON.stringify(missing));
    await rejects(loadModel(dir, { device: 'cpu' }), 'ERR_MOTIF_FORMAT', "'intermediate_size'", 'missing');
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, num_hidden_layers: 2.5 }));
    await rejects(loadModel(dir, { device: 'cpu' }), 'ERR_MOTIF_FORMAT', "'num_hidden_layers'", 'positive integer');
  });

  it('no weights at all', async () => {
    const dir = await freshModel();
    await rm(path.join(dir, 'model.safetensors'));
    await rejects(loadModel(dir, { device: 'cpu' }), 'ERR_MOTIF_IO', 'model.safetensors.index.json');
  });

  it('a truncated safetensors file', async () => {
    const dir = await freshModel();
    const file = path.join(dir, 'model.safetensors');
    const bytes = await readFile(file);
    await writeFile(file, bytes.subarray(0, bytes.length - 100));
    await rejects(loadModel(dir, { device: 'cpu' }), 'ERR_MOTIF_FORMAT', file, 'outside the data section');
    await writeFile(file, bytes.subarray(0, 5));
    await rejects(loadModel(dir, { device: 'cpu' }), 'ERR_MOTIF_FORMAT', 'too short');
  });

  it('a header length that runs past the end of the file', async () => {
    const dir = await freshModel();
    await writeRawSafetensors(dir, '{}', Buffer.alloc(0), 1n << 40n);
    await rejects(loadModel(dir, { device: 'cpu' }), 'ERR_MOTIF_FORMAT', 'header length', 'runs past the end');
  });

  it('overlapping tensor offsets', async () => {
    const dir = await freshModel();
    const header = {
      'model.embed_tokens.weight': { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      'model.norm.weight': { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    };
    await writeRawSafetensors(dir, header, Buffer.alloc(16));
    await rejects(loadModel(dir, { device: 'cpu' }), 'ERR_MOTIF_FORMAT', 'overlap', 'model.norm.weight');
  });

  it('an unknown dtype', async () => {
    const dir = await freshModel();
    await writeRawSafetensors(
      dir,
      { 'model.embed_tokens.weight': { dtype: 'I64', shape: [1], data_offsets: [0, 8] } },
      Buffer.alloc(8),
    );
    await rejects(
      loadModel(dir, { device: 'cpu' }),
      'ERR_MOTIF_UNSUPPORTED',
      'model.embed_tokens.weight',
      'I64',
      'F32, F16 or BF16',
    );
  });

  it('a missing tensor', async () => {
    const dir = await freshModel();
    const { tensors } = tinyModel();
    await writeFile(
      path.join(dir, 'model.safetensors'),
      safetensorsBytes(tensors.filter((t) => t.name !== 'lm_head.weight')),
    );
    await rejects(loadModel(dir, { device: 'cpu' }), 'ERR_MOTIF_FORMAT', "'lm_head.weight'", 'missing');
  });

  it('a tensor of the wrong shape', async () => {
    const dir = await freshModel();
    const { tensors } = tinyModel();
    const bad = tensors.map((t) =>
      t.name === 'model.layers.1.mlp.up_proj.weight' ? { ...t, shape: [t.shape[1], t.shape[0]] } : t,
    );
    await writeFile(path.join(dir, 'model.safetensors'), safetensorsBytes(bad));
    await rejects(
      loadModel(dir, { device: 'cpu' }),
      'ERR_MOTIF_FORMAT',
      'model.layers.1.mlp.up_proj.weight',
      'has shape [16, 24], expected [24, 16]',
    );
  });

  it('a sharded index that names a missing shard', async () => {
    const dir = await freshModel();
    await rm(path.join(dir, 'model.safetensors'));
    const index = { metadata: {}, weight_map: { 'model.embed_tokens.weight': 'model-00001-of-00002.safetensors' } };
    await writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    await rejects(loadModel(dir, { device: 'cpu' }), 'ERR_MOTIF_IO', 'model-00001-of-00002.safetensors');
  });

  it('bad options', async () => {
    const dir = await freshModel();
    await rejects(loadModel(dir, { device: 'tpu' as 'cpu' }), 'ERR_MOTIF_INVALID_ARGUMENT', 'options.device', "'cuda'");
    await rejects(loadModel(dir, { threads: -1 }), 'ERR_MOTIF_INVALID_ARGUMENT', 'options.threads');
    await rejects(
      loadModel(dir, { weights: 'mmap' as 'map' }),
      'ERR_MOTIF_INVALID_ARGUMENT',
      'options.weights',
      "'read'",
    );
    await rejects(loadModel('' as string), 'ERR_MOTIF_INVALID_ARGUMENT', 'dir');
  });
});

describe('forward rejects bad tokens and calls after dispose', () => {
  it('token ids out of range, negative, fractional; empty input', async () => {
    const model = await loadModel(await freshModel(), { device: 'cpu' });
    await rejects(model.forward([1, 2, 37]), 'ERR_MOTIF_INVALID_ARGUMENT', 'tokens[2] = 37', '[0, 37)');
    await rejects(model.forward(new Int32Array([-1])), 'ERR_MOTIF_INVALID_ARGUMENT', 'tokens[0] = -1');
    await rejects(model.forward([1.5]), 'ERR_MOTIF_INVALID_ARGUMENT', 'tokens[0] = 1.5');
    await rejects(model.forward([]), 'ERR_MOTIF_INVALID_ARGUMENT', 'tokens');
    await rejects(model.forward([[1, 2], []]), 'ERR_MOTIF_INVALID_ARGUMENT', 'tokens[1]');
    await rejects(model.forward(new Array(129).fill(1)), 'ERR_MOTIF_INVALID_ARGUMENT', 'max_position_embeddings');
    await model.dispose();
  });

  it('every call after dispose()', async () => {
    const model = await loadModel(await freshModel(), { device: 'cpu' });
    await model.dispose();
    await model.dispose(); // twice is fine
    await rejects(model.forward([1, 2]), 'ERR_MOTIF_DISPOSED', 'disposed');
    assert.throws(
      () => model.info,
      (e: unknown) => e instanceof MotifError && e.code === 'ERR_MOTIF_DISPOSED',
    );
  });

  it('dispose() while a forward is in flight waits for it', async () => {
    const model = await loadModel(await freshModel(), { device: 'cpu' });
    const pending = model.forward([1, 2, 3]);
    await model.dispose();
    const logits = await pending;
    assert.equal(logits.length, 3 * 37);
  });
});
