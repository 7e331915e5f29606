/**
 * fuzz-findings.test.ts — regression tests for what the TypeScript fuzzers (test/fuzz/js/) found,
 * plus a short deterministic run of each fuzzer (a fixed seed and iteration count) so they cannot rot.
 *
 * Findings (fuzz-gguf, fixed in lib/formats/gguf.ts):
 * 1. Value, array-item and tensor type names were checked with `in`, so names every object inherits
 *    ('constructor', 'toString', '__proto__', ...) passed: the writer then crashed with a TypeError,
 *    or silently wrote type 0 for an empty array of type 'constructor', or a NaN-sized tensor.
 * 2. general.alignment accepted any multiple of 8 (24, 2^31): ggml refuses non-powers of two, and a
 *    huge one made multi-GiB (sparse) files.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type GgufValue, gguf, layoutGguf } from '../../lib/formats/gguf.js';
import { MotifError } from '../../lib/native/errors.js';
import { fuzzGguf } from '../fuzz/js/fuzz-gguf.js';
import { fuzzPeft } from '../fuzz/js/fuzz-peft.js';

const refused = (re: RegExp) => (e: unknown) => e instanceof MotifError && re.test(e.message);

describe('GGUF writer findings', () => {
  for (const odd of ['constructor', 'toString', '__proto__', 'hasOwnProperty'])
    it(`refuses the inherited name '${odd}' as a value, item or tensor type`, () => {
      assert.throws(
        () => layoutGguf([['k', { type: odd, value: 1 } as unknown as GgufValue]], []),
        refused(/gguf\.\* constructors/),
      );
      assert.throws(
        () => layoutGguf([['k', { type: 'array', itemType: odd, value: [] } as unknown as GgufValue]], []),
        refused(/not a scalar GGUF type/),
      );
      assert.throws(
        () => layoutGguf([], [{ name: 'x', shape: [2], type: odd as 'F32' }]),
        refused(/unknown ggml type/),
      );
    });

  it('general.alignment must be a power of two from 8 to 1 MiB', () => {
    for (const bad of [24, 40, 0, 4, 2 ** 31, 2 ** 21])
      assert.throws(() => layoutGguf([['general.alignment', gguf.u32(bad)]], []), refused(/power of two/), String(bad));
    for (const good of [8, 16, 64, 4096, 2 ** 20])
      assert.equal(layoutGguf([['general.alignment', gguf.u32(good)]], []).alignment, good);
  });
});

describe('the JS fuzzers, briefly (fixed seeds)', () => {
  const budget = (name: string) => ({
    seconds: 60,
    maxRuns: 300,
    seed: 20261125,
    findingsDir: `build-fuzz/js-findings/${name}`,
  });
  it('fuzz-gguf: 300 round trips, no finding', async () => {
    const r = await fuzzGguf(budget('fuzz-gguf'));
    assert.equal(r.executions, 300);
    assert.equal(r.findings, 0);
    assert.ok(r.accepted > 30, `only ${r.accepted} inputs were accepted; the round trip is barely exercised`);
  });
  it('fuzz-peft: 300 mutated adapters, no finding', async () => {
    const r = await fuzzPeft(budget('fuzz-peft'));
    assert.equal(r.executions, 300);
    assert.equal(r.findings, 0);
    assert.ok(r.accepted > 10 && r.accepted < 300, `accepted ${r.accepted} of 300`);
  });
});
