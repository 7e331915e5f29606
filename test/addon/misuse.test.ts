/**
 * misuse.test.ts — misuse from JavaScript must be handled or rejected clearly, never crash
 * the process (issue 8, "Misuse from JS").
 *
 * - the raw addon (loadBinding(), which lib/index.ts exports) given typed arrays of the wrong
 *   type or length, or detached buffers: a TypeError / RangeError thrown synchronously, before
 *   any native work starts; token ids, options and request numbers out of range: a rejection
 *   with ERR_MOTIF_INVALID_ARGUMENT, and the model stays usable;
 * - every call on a disposed model, natively and through Model;
 * - concurrent calls on one model: through Model they queue and all resolve with equal
 *   results; through the raw addon a second call while one runs throws ERR_MOTIF_BUSY;
 * - a model dropped (garbage-collected) while a call is in flight, run in a child
 *   `node --expose-gc` (test/helpers/gc-in-flight.ts) so a crash there is observed, not suffered.
 *
 * scripts/ci-hardening.sh runs this file under AddressSanitizer too (MOTIF_ADDON_PATH + LD_PRELOAD,
 * inherited by the child processes).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadModel, MotifError } from '../../lib/index.js';
import { type AddonModel, type BindingModule, loadBinding } from '../../lib/native/binding.js';
import { writeTinyModel } from '../helpers/tiny-model.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const GC_CHILD = path.join(HERE, '..', 'helpers', 'gc-in-flight.ts');
const V = 37;
const LOAD = { device: 'cpu', threads: 1, kvCacheBytes: 1 << 20, kvBlockSize: 16, maxStepTokens: 256, weights: 'auto' };

let tmp: string;
let tinyDir: string;
/** Big enough that a forward of 4 x 128 tokens takes a while (GC cases). */
let slowDir: string;
let binding: BindingModule;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-misuse-'));
  tinyDir = await writeTinyModel(path.join(tmp, 'tiny'), { vocab: V });
  slowDir = await writeTinyModel(path.join(tmp, 'slow'), {
    hidden: 256,
    intermediate: 512,
    layers: 4,
    heads: 4,
    kvHeads: 2,
    vocab: 4096,
  });
  binding = loadBinding();
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Valid raw forward arguments for `n` tokens in one sequence. */
function args(n = 3): [Int32Array, Int32Array, Float32Array] {
  return [new Int32Array(n).map((_, i) => i % V), new Int32Array([n]), new Float32Array(n * V)];
}

function detached<T extends ArrayBufferView>(a: T): T {
  structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] });
  assert.equal(a.byteLength, 0);
  return a;
}

/** Asserts fn throws synchronously an error of class `cls` whose message mentions `needle`. */
function throwsSync(fn: () => unknown, cls: ErrorConstructor, needle: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
    assert.ok((err as Error).message.includes(needle), `${(err as Error).message} should mention ${needle}`);
    return true;
  });
}

function hasCode(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.equal((err as { code?: string }).code, code, `code of ${String(err)}`);
    return true;
  };
}

describe('raw addon forward: wrong types, lengths and detached buffers', () => {
  let m: AddonModel;
  before(async () => {
    m = await binding.AddonModel.load(tinyDir, LOAD);
  });
  after(() => m.dispose());

  it('typed arrays of the wrong type, and non-arrays, are TypeErrors', () => {
    const [tokens, lens, out] = args();
    const wrongTokens: unknown[] = [
      new Float32Array(3),
      new Uint32Array(3),
      new Int16Array(3),
      new BigInt64Array(3),
      new DataView(new ArrayBuffer(12)),
      Buffer.alloc(12),
      [0, 1, 2],
      'abc',
      null,
      undefined,
      { length: 3 },
    ];
    for (const bad of wrongTokens) throwsSync(() => m.forward(bad as Int32Array, lens, out), TypeError, 'tokens');
    throwsSync(() => m.forward(tokens, new Uint8Array([3]) as unknown as Int32Array, out), TypeError, 'seqLens');
    throwsSync(() => m.forward(tokens, lens, new Float64Array(3 * V) as unknown as Float32Array), TypeError, 'out');
    throwsSync(() => m.forward(tokens, lens, new Int32Array(3 * V) as unknown as Float32Array), TypeError, 'out');
    throwsSync(() => (m.forward as (...a: unknown[]) => unknown)(), TypeError, 'tokens');
  });

  it('lengths that do not add up are RangeErrors', () => {
    const [tokens, lens, out] = args();
    throwsSync(() => m.forward(tokens, new Int32Array([2]), out), RangeError, 'sum to tokens.length');
    throwsSync(() => m.forward(tokens, new Int32Array([]), out), RangeError, 'non-empty');
    throwsSync(() => m.forward(tokens, new Int32Array([4, -1]), out), RangeError, 'non-negative');
    throwsSync(() => m.forward(tokens, new Int32Array([2 ** 31 - 1, 2 ** 31 - 1, 5]), out), RangeError, 'sum');
    throwsSync(() => m.forward(tokens, lens, new Float32Array(3 * V - 1)), RangeError, 'out must hold');
    throwsSync(() => m.forward(tokens, lens, new Float32Array(3 * V + 1)), RangeError, 'out must hold');
  });

  it('an empty sequence that passes the length checks is rejected natively', async () => {
    await assert.rejects(
      m.forward(new Int32Array(0), new Int32Array([0]), new Float32Array(0)),
      hasCode('ERR_MOTIF_INVALID_ARGUMENT'),
    );
  });

  it('detached buffers are rejected before any native work', () => {
    const [tokens, lens, out] = args();
    // A detached view has length 0, so the length checks name it; nothing reads the old memory.
    assert.throws(() => m.forward(detached(args()[0]), lens, out), RangeError);
    assert.throws(() => m.forward(tokens, detached(args()[1]), out), RangeError);
    assert.throws(() => m.forward(tokens, lens, detached(args()[2])), RangeError);
    assert.throws(() => m.forward(detached(args()[0]), detached(args()[1]), detached(args()[2])), RangeError);
  });

  it('views into a larger buffer, at an offset, are read exactly', async () => {
    const [tokens, lens] = args();
    const want = new Float32Array(3 * V);
    await m.forward(tokens, lens, want);
    const big = new Int32Array(16).fill(-7);
    big.set(tokens, 5);
    const outBig = new Float32Array(3 * V + 8).fill(Number.NaN);
    const out = outBig.subarray(4, 4 + 3 * V);
    await m.forward(big.subarray(5, 8), lens, out);
    assert.deepEqual(out, want);
    assert.ok(Number.isNaN(outBig[3]) && Number.isNaN(outBig[4 + 3 * V]), 'nothing written outside the view');
  });

  it('token ids out of range and over-long sequences reject with a code, not a crash', async () => {
    const [, lens, out] = args();
    for (const bad of [V, -1, 2 ** 31 - 1, -(2 ** 31)])
      await assert.rejects(m.forward(new Int32Array([0, bad, 1]), lens, out), hasCode('ERR_MOTIF_INVALID_ARGUMENT'));
    const long = args(129); // max_position_embeddings is 128
    await assert.rejects(m.forward(...long), hasCode('ERR_MOTIF_INVALID_ARGUMENT'));
    // The model still works after the rejections.
    await m.forward(...args());
  });

  it('generate with wrong argument types is a TypeError', () => {
    const req = { prompt: new Int32Array([1, 2]), n: 1, maxTokens: 2, temperature: 0, topK: 0, topP: 1, minP: 0 };
    const full = { ...req, seed: 1, stop: new Int32Array(0) };
    const gen = m.generate as (...a: unknown[]) => unknown;
    throwsSync(() => gen.call(m, 'not an array'), TypeError, 'requests');
    throwsSync(() => gen.call(m, [null]), TypeError, 'requests[0]');
    throwsSync(() => gen.call(m, [{ ...full, prompt: [1, 2] }]), TypeError, 'prompt');
    throwsSync(() => gen.call(m, [{ ...full, prompt: new Float32Array(2) }]), TypeError, 'prompt');
    throwsSync(() => gen.call(m, [{ ...full, stop: undefined }]), TypeError, 'stop');
    throwsSync(() => gen.call(m, [{ ...full, n: '1' }]), TypeError, 'n');
    throwsSync(() => gen.call(m, [{ ...full, temperature: Number.NaN }]), TypeError, 'temperature');
    throwsSync(() => gen.call(m, [req]), TypeError, 'seed');
  });
});

describe('raw addon: numbers out of range in options and requests', () => {
  it('load options out of range reject with ERR_MOTIF_INVALID_ARGUMENT', async () => {
    for (const over of [
      { kvBlockSize: 1e10 },
      { kvBlockSize: 0 },
      { threads: -5 },
      { threads: 1e12 },
      { maxStepTokens: 1e12 },
      { weights: 'mmap' },
    ])
      await assert.rejects(
        binding.AddonModel.load(tinyDir, { ...LOAD, ...over }),
        hasCode('ERR_MOTIF_INVALID_ARGUMENT'),
      );
    for (const over of [
      { threads: Number.NaN },
      { kvCacheBytes: Number.POSITIVE_INFINITY },
      { device: 3 },
      { weights: 1 },
    ])
      await assert.rejects(
        async () => binding.AddonModel.load(tinyDir, { ...LOAD, ...over } as typeof LOAD),
        TypeError,
      );
  });

  it('generate numbers out of range reject with ERR_MOTIF_INVALID_ARGUMENT; the model stays usable', async () => {
    const m = await binding.AddonModel.load(tinyDir, LOAD);
    const req = {
      prompt: new Int32Array([1, 2]),
      n: 1,
      maxTokens: 2,
      temperature: 0,
      topK: 0,
      topP: 1,
      minP: 0,
      seed: 1,
      stop: new Int32Array(0),
    };
    for (const over of [{ n: 1e12 }, { n: -1 }, { maxTokens: 1e12 }, { topK: -1e12 }, { prompt: new Int32Array([V]) }])
      await assert.rejects(async () => m.generate([{ ...req, ...over }]), hasCode('ERR_MOTIF_INVALID_ARGUMENT'));
    const { results } = await m.generate([req]);
    assert.equal(results[0].completions[0].tokens.length, 2);
    m.dispose();
  });
});

describe('calls on a disposed model', () => {
  it('raw addon: every method throws ERR_MOTIF_DISPOSED; dispose twice is fine', async () => {
    const m = await binding.AddonModel.load(tinyDir, LOAD);
    m.dispose();
    m.dispose();
    assert.throws(() => m.forward(...args()), hasCode('ERR_MOTIF_DISPOSED'));
    assert.throws(() => m.config(), hasCode('ERR_MOTIF_DISPOSED'));
    assert.throws(() => m.info(), hasCode('ERR_MOTIF_DISPOSED'));
    assert.throws(() => m.kvCacheStats(), hasCode('ERR_MOTIF_DISPOSED'));
    assert.throws(() => m.generate([]), hasCode('ERR_MOTIF_DISPOSED'));
    m.abortGenerate(); // nothing to abort: a no-op, not a crash
  });

  it('raw addon: dispose while a call runs throws ERR_MOTIF_BUSY and frees nothing', async () => {
    const m = await binding.AddonModel.load(tinyDir, LOAD);
    const [tokens, lens, out] = args();
    const running = m.forward(tokens, lens, out);
    assert.throws(() => m.dispose(), hasCode('ERR_MOTIF_BUSY'));
    await running;
    assert.ok(out.every(Number.isFinite));
    m.dispose();
  });

  it('Model: forward, generate and info reject with ERR_MOTIF_DISPOSED; config stays readable', async () => {
    const model = await loadModel(tinyDir, { device: 'cpu', threads: 1, tokenizer: false });
    await model.dispose();
    await model.dispose();
    assert.equal(model.disposed, true);
    await assert.rejects(
      model.forward([1, 2]),
      (e: unknown) => e instanceof MotifError && e.code === 'ERR_MOTIF_DISPOSED',
    );
    await assert.rejects(
      model.generate([{ tokens: [1, 2], maxTokens: 2 }]),
      (e: unknown) => e instanceof MotifError && e.code === 'ERR_MOTIF_DISPOSED',
    );
    assert.throws(() => model.info, hasCode('ERR_MOTIF_DISPOSED'));
    assert.equal(model.config.vocabSize, V);
  });

  it('Model: calls queued before dispose() all finish; dispose waits for them', async () => {
    const model = await loadModel(tinyDir, { device: 'cpu', threads: 1, tokenizer: false });
    const want = await model.forward([3, 1, 4]);
    const queued = [model.forward([3, 1, 4]), model.forward([3, 1, 4]), model.forward([3, 1, 4])];
    const disposing = model.dispose();
    await assert.rejects(model.forward([1]), hasCode('ERR_MOTIF_DISPOSED'));
    for (const got of await Promise.all(queued)) assert.deepEqual(got, want);
    await disposing;
  });
});

describe('concurrent calls on one model', () => {
  it('Model: forward and generate from many async tasks all resolve, with equal results', async () => {
    const model = await loadModel(tinyDir, { device: 'cpu', threads: 2, kvCacheBytes: 1 << 20, tokenizer: false });
    const seq = [5, 9, 2, 7, 1];
    const want = await model.forward(seq);
    const greedy = { tokens: [1, 2, 3], maxTokens: 6, temperature: 0 };
    const [wantGen] = await model.generate([greedy]);
    const tasks: Promise<unknown>[] = [];
    for (let i = 0; i < 8; i++) {
      tasks.push((async () => model.forward(i % 2 ? seq : new Int32Array(seq)))());
      tasks.push((async () => (await model.generate([greedy]))[0])());
    }
    const got = await Promise.all(tasks);
    for (let i = 0; i < got.length; i += 2) {
      assert.deepEqual(got[i], want);
      assert.deepEqual((got[i + 1] as typeof wantGen).completions[0].tokens, wantGen.completions[0].tokens);
    }
    await model.dispose();
  });

  it('raw addon: a second call while one runs throws ERR_MOTIF_BUSY; the first completes', async () => {
    const m = await binding.AddonModel.load(tinyDir, LOAD);
    const [tokens, lens, out] = args();
    const first = m.forward(tokens, lens, out);
    // The first call cannot settle before this synchronous code yields, so it is still in flight.
    assert.throws(() => m.forward(...args()), hasCode('ERR_MOTIF_BUSY'));
    const req = { prompt: new Int32Array([1]), n: 1, maxTokens: 1, temperature: 0, topK: 0, topP: 1, minP: 0 };
    assert.throws(() => m.generate([{ ...req, seed: 0, stop: new Int32Array(0) }]), hasCode('ERR_MOTIF_BUSY'));
    assert.throws(() => m.kvCacheStats(), hasCode('ERR_MOTIF_BUSY'));
    assert.equal(m.config().vocabSize, V); // read-only calls are fine meanwhile
    await first;
    assert.ok(out.every(Number.isFinite));
    await m.forward(...args()); // free again
    m.dispose();
  });

  it('raw addon: many models used at once from many tasks', async () => {
    const models = await Promise.all([1, 2, 3].map(() => binding.AddonModel.load(tinyDir, LOAD)));
    const outs = await Promise.all(
      models.map(async (m) => {
        const [tokens, lens, out] = args(5);
        await m.forward(tokens, lens, out);
        return out;
      }),
    );
    for (const o of outs) assert.deepEqual(o, outs[0]);
    for (const m of models) m.dispose();
  });
});

/** Runs one case of test/helpers/gc-in-flight.ts in `node --expose-gc` and returns what it printed. */
function gcChild(which: string): {
  status: number | null;
  signal: string | null;
  result?: Record<string, unknown>;
  why: string;
} {
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', GC_CHILD, slowDir, which], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let result: Record<string, unknown> | undefined;
  try {
    result = JSON.parse(last);
  } catch {
    result = undefined;
  }
  // Only the first line of a sanitizer report (or the last stderr line) is kept for the message.
  const report = r.stderr.split('\n').find((l) => /ERROR: \w+Sanitizer|runtime error/.test(l));
  const why = `status ${r.status}, signal ${r.signal}; stdout: ${last}; stderr: ${report ?? r.stderr.trim().split('\n').pop() ?? ''}`;
  return { status: r.status, signal: r.signal, result, why };
}

describe('a model garbage-collected while a call is in flight', () => {
  for (const which of ['raw', 'ts', 'generate']) {
    it(`${which}: the call completes, then the model is collected, without a crash`, () => {
      const r = gcChild(which);
      assert.equal(r.status, 0, r.why);
      assert.equal(r.result?.ok, true, r.why);
      assert.ok(Number(r.result?.gcsInFlight) >= 1, `no GC ran while the call was in flight: ${r.why}`);
      assert.equal(r.result?.collected, true, `the model object was never collected: ${r.why}`);
    });
  }

  // A finding of the hardening pass, fixed: ForwardWorker used to keep raw pointers into the caller's
  // buffers; transferring them away mid-call and collecting the clones let it write freed memory.
  // It now copies the inputs and fills `out` on the JS thread only if it is still attached.
  it('detach: buffers transferred away mid-call are not written after they are freed', () => {
    const r = gcChild('detach');
    assert.equal(r.status, 0, r.why);
    assert.equal(r.result?.ok, true, r.why);
  });
});
