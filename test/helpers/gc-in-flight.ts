/**
 * gc-in-flight.ts — the child process of test/addon/misuse.test.ts's garbage-collection cases,
 * run as `node --expose-gc --import tsx test/helpers/gc-in-flight.ts <model dir> <case>`.
 *
 * Each case starts native work, drops every JS reference it can (the model object, and in the
 * `detach` case the typed arrays' memory itself, transferred away to a clone that is dropped
 * too) and forces full garbage collections while the work is in flight. It prints one JSON line
 * `{ ok, gcsInFlight, collected, ... }` and exits 0; a crash (or a sanitizer report) ends it
 * with a signal or a non-zero status instead, which is what the parent test looks for.
 *
 * Cases:
 *   raw       AddonModel from loadBinding(); forward() called and the model object dropped at once
 *   ts        the same through loadModel() / Model.forward()
 *   generate  Model.generate() with the model dropped while it runs
 *   detach    raw forward() whose tokens / out ArrayBuffers are transferred away mid-call
 */
import { loadModel } from '../../lib/index.js';
import { type AddonModel, loadBinding } from '../../lib/native/binding.js';

const [dir, which] = process.argv.slice(2);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc || !dir || !which) {
  console.error(
    'usage: node --expose-gc --import tsx test/helpers/gc-in-flight.ts <model dir> <raw|ts|generate|detach>',
  );
  process.exit(2);
}
const collectGarbage: () => void = gc;

const LOAD = { device: 'cpu', threads: 1, kvCacheBytes: 1 << 22, kvBlockSize: 16, maxStepTokens: 256, weights: 'auto' };
const SEQ = 128;
const SEQS = 4;

/** Forces full collections, yielding to the event loop between them, until `p` settles. */
async function gcUntilSettled<T>(p: Promise<T>): Promise<{ value: T; gcs: number }> {
  let settled = false;
  const watched = p.finally(() => {
    settled = true;
  });
  let gcs = 0;
  while (!settled) {
    collectGarbage();
    gcs++;
    await new Promise((r) => setImmediate(r));
  }
  return { value: await watched, gcs };
}

/** Collects until `registry` reported the object, or gives up after a few rounds. */
async function collectedSoon(flag: { done: boolean }): Promise<boolean> {
  for (let i = 0; i < 20 && !flag.done; i++) {
    collectGarbage();
    await new Promise((r) => setTimeout(r, 5));
  }
  return flag.done;
}

function inputs(vocab: number): { tokens: Int32Array; lens: Int32Array; out: Float32Array } {
  const tokens = new Int32Array(SEQ * SEQS);
  for (let i = 0; i < tokens.length; i++) tokens[i] = (i * 7919) % vocab;
  return { tokens, lens: new Int32Array(SEQS).fill(SEQ), out: new Float32Array(SEQ * SEQS * vocab) };
}

function allFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}

const flag = { done: false };
const registry = new FinalizationRegistry<string>(() => {
  flag.done = true;
});

async function main(): Promise<Record<string, unknown>> {
  if (which === 'raw' || which === 'detach') {
    const binding = loadBinding();
    // Only the promise survives this block: the AddonModel object itself becomes garbage.
    const { promise, out, vocab } = await (async () => {
      const m: AddonModel = await binding.AddonModel.load(dir, LOAD);
      registry.register(m, 'model');
      const vocab = m.config().vocabSize;
      const { tokens, lens, out } = inputs(vocab);
      const promise = m.forward(tokens, lens, out);
      if (which === 'detach') {
        // The call holds pointers into these buffers: move their memory to clones, drop the
        // clones, and collect. Native code must not write into freed memory.
        structuredClone(out.buffer, { transfer: [out.buffer] });
        structuredClone(tokens.buffer, { transfer: [tokens.buffer] });
      }
      return { promise, out, vocab };
    })();
    // A detached output is reported as an error (never written): that is the expected outcome.
    const settled =
      which === 'detach'
        ? promise.catch((e: { code?: string }) => {
            if (e?.code !== 'ERR_MOTIF_INVALID_ARGUMENT') throw e;
          })
        : promise;
    const { gcs } = await gcUntilSettled(settled);
    const finite = which === 'detach' ? out.length === 0 : allFinite(out) && out.length === SEQ * SEQS * vocab;
    return { ok: finite, gcsInFlight: gcs, collected: await collectedSoon(flag) };
  }
  if (which === 'ts' || which === 'generate') {
    // Wrapped in an object: an async function returning a promise would be awaited with it.
    const { promise } = await (async (): Promise<{ promise: Promise<unknown> }> => {
      const model = await loadModel(dir, { device: 'cpu', threads: 1, kvCacheBytes: 1 << 22, tokenizer: false });
      registry.register(model, 'model');
      const { tokens, lens } = inputs(model.config.vocabSize);
      if (which === 'ts') {
        return { promise: model.forward(Array.from(lens, (_, s) => tokens.subarray(s * SEQ, (s + 1) * SEQ))) };
      }
      const prompt = Array.from(tokens.subarray(0, 16));
      return { promise: model.generate([{ tokens: prompt, n: 4, maxTokens: 24, temperature: 1, seed: 1 }]) };
    })();
    const { value, gcs } = await gcUntilSettled<unknown>(promise);
    const ok =
      which === 'ts'
        ? allFinite(value as Float32Array)
        : (value as Array<{ completions: unknown[] }>)[0].completions.length === 4;
    return { ok, gcsInFlight: gcs, collected: await collectedSoon(flag) };
  }
  throw new Error(`unknown case ${which}`);
}

main().then(
  (r) => {
    console.log(JSON.stringify(r));
  },
  (err) => {
    console.log(JSON.stringify({ ok: false, error: String(err), code: (err as { code?: string }).code }));
  },
);
