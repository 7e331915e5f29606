// Tokenizer tests on the real Qwen2.5 files (../shared/data/tokenizer/qwen2.5): published
// known ids, the added-token id range, a small independent byte-level BPE written here
// (pre-tokenizer regex + merges by rank) as a second implementation to compare against,
// round trips on multilingual text, emoji, digits and whitespace runs, and the streaming
// decoder never emitting half a character.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';

import { loadTokenizer, type Tokenizer } from '../../lib/text/index.js';

const DIR = '../shared/data/tokenizer/qwen2.5';
const FIXTURES = 'test/fixtures/text';

// ---------------------------------------------------------------------------------------
// An independent reference: byte-level BPE from tokenizer.json's vocab and merges.

interface RefBpe {
  encode(text: string): number[];
}

function buildReference(): RefBpe {
  const json = JSON.parse(readFileSync(path.join(DIR, 'tokenizer.json'), 'utf8')) as {
    model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
    added_tokens: { id: number; content: string }[];
  };
  const vocab = new Map(Object.entries(json.model.vocab));
  const ranks = new Map<string, number>();
  json.model.merges.forEach((m, i) => {
    const key = Array.isArray(m) ? `${m[0]} ${m[1]}` : m;
    ranks.set(key, i);
  });
  // GPT-2 bytes_to_unicode.
  const byteChar: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    byteChar[b] = String.fromCodePoint(keep ? b : 256 + n++);
  }
  // Qwen2's Split regex, with the (?i:...) group spelled out for JavaScript.
  const pre =
    /'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;
  const enc = new TextEncoder();
  const bpe = (piece: string): number[] => {
    let word = [...enc.encode(piece)].map((b) => byteChar[b] as string);
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const a = word[best] as string;
      const b = word[best + 1] as string;
      const next: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(word[i] as string);
      }
      word = next;
    }
    return word.map((sym) => {
      const id = vocab.get(sym);
      if (id === undefined) throw new Error(`reference: no id for ${sym}`);
      return id;
    });
  };
  const specials = json.added_tokens.map((t) => t.content).sort((x, y) => y.length - x.length);
  const specialId = new Map(json.added_tokens.map((t) => [t.content, t.id]));
  return {
    encode(text: string): number[] {
      const out: number[] = [];
      let rest = text.normalize('NFC');
      while (rest.length) {
        let cut = rest.length;
        let hit: string | null = null;
        for (const s of specials) {
          const k = rest.indexOf(s);
          if (k >= 0 && k < cut) {
            cut = k;
            hit = s;
          }
        }
        for (const m of rest.slice(0, cut).matchAll(pre)) out.push(...bpe(m[0]));
        if (hit === null) break;
        out.push(specialId.get(hit) as number);
        rest = rest.slice(cut + hit.length);
      }
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------------

const CORPUS = [
  'Hello, world! The quick brown fox jumps over the lazy dog.',
  '那明天呢? 今天天气很好，我们去公园散步吧。',
  '日本語のテキスト：東京タワーは333メートルです。',
  '한국어 문장입니다. 감사합니다!',
  'Привет, мир! Ёжик в тумане.',
  'مرحبا بالعالم، كيف حالك؟',
  'नमस्ते दुनिया — हिन्दी पाठ',
  'Grüße aus Köln: Straße, Äpfel, Öl, Übermut; naïve café résumé',
  'Emoji: 😊🦩🧑‍🚀👩🏽‍💻🇫🇷 ❤️‍🔥 ✅ 🫠',
  'Digits: 1234567890 3.14159 -42 1,000,000 0x1F 007',
  'Whitespace:    four spaces\t\ttabs\n\n\nthree newlines\r\n crlf         end   ',
  '                                                                  ',
  '\n\n\n\n\n\n',
  'Code: def f(x):\n    return x ** 2  # square\n\tif (a && b) { c++; }',
  'LaTeX: $\\frac{1}{2} + \\sqrt{3} = \\boxed{\\dfrac{14}{3}}$ and \\left( 3, \\frac{\\pi}{2} \\right)',
  "Contractions: I'm, you're, we've, they'll, she'd, it's, DON'T, He'S",
  '<|im_start|>system\nYou are Qwen.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
  'Mixed 中文 English 123 😊 and    spaces',
];

describe('tokenizer (Qwen2.5)', () => {
  let tok: Tokenizer;
  let ref: RefBpe;
  before(async () => {
    tok = await loadTokenizer(DIR);
    ref = buildReference();
  });

  it('encodes strings to the ids published for the Qwen2/2.5 tokenizer', () => {
    // From public tests of independent Qwen2 tokenizer implementations.
    const known: [string, number[]][] = [
      ['hello', [14990]],
      [' world', [1879]],
      ['hello world', [14990, 1879]],
      ['hello ', [14990, 220]],
      ['hello  ', [14990, 256]],
      ["I'm", [40, 2776]],
      ['\n', [198]],
      ['hello\n\n', [14990, 271]],
      [' \n', [715]],
      ['  ', [256]],
      ['hello\tworld', [14990, 76508]],
      ['😊', [144236]],
      ['', []],
      ['<|endoftext|>', [151643]],
      ['hi<|endoftext|>!', [6023, 151643, 0]],
      ['<|im_start|>user\nhi<|im_end|>', [151644, 872, 198, 6023, 151645]],
      ['<|im_start|>hello<|im_end|>', [151644, 14990, 151645]],
      [' hello sir. How are you Edward?', [23811, 27048, 13, 2585, 525, 498, 21891, 30]],
    ];
    for (const [text, ids] of known) {
      const got = tok.encode(text);
      assert.ok(got instanceof Int32Array);
      assert.deepEqual([...got], ids, JSON.stringify(text));
      assert.equal(tok.decode(got), text);
    }
  });

  it('has the 22 added tokens at ids 151643-151664 and the special-token ids of the config', () => {
    const json = JSON.parse(readFileSync(path.join(DIR, 'tokenizer.json'), 'utf8')) as {
      added_tokens: { id: number; content: string; special: boolean }[];
    };
    assert.equal(json.added_tokens.length, 22);
    json.added_tokens.forEach((t, i) => {
      assert.equal(t.id, 151643 + i);
      assert.deepEqual([...tok.encode(t.content)], [t.id], t.content);
      assert.equal(tok.tokenToId(t.content), t.id);
      assert.equal(tok.idToToken(t.id), t.content);
    });
    assert.equal(tok.vocabSize, 151665);
    assert.equal(tok.eosId, 151645); // <|im_end|>
    assert.equal(tok.padId, 151643); // <|endoftext|>
    assert.equal(tok.bosId, null);
    assert.equal(tok.imStartId, 151644);
    assert.equal(tok.imEndId, 151645);
    assert.deepEqual([...tok.stopIds], [151645, 151643]);
    assert.ok(tok.specialIds.has(151643) && tok.specialIds.has(151644));
    // Qwen2.5 adds no BOS/EOS: the flag changes nothing.
    assert.deepEqual(
      [...tok.encode('hi', { addSpecialTokens: true })],
      [...tok.encode('hi', { addSpecialTokens: false })],
    );
  });

  it('agrees with an independent byte-level BPE on multilingual text, emoji, digits and whitespace', () => {
    for (const text of CORPUS) assert.deepEqual([...tok.encode(text)], ref.encode(text), JSON.stringify(text));
    // Digits are split one by one (\p{N} is its own piece).
    assert.equal(tok.encode('1234567890').length, 10);
  });

  it('agrees with the reference BPE on real questions (GSM8K, MATH-500)', () => {
    const lines = [
      ...readFileSync('../shared/data/gsm8k/test.jsonl', 'utf8').split('\n').slice(0, 60),
      ...readFileSync('../shared/data/math500/test.jsonl', 'utf8').split('\n').slice(0, 60),
    ].filter((l) => l.trim());
    for (const line of lines) {
      const row = JSON.parse(line) as { question?: string; problem?: string; answer: string };
      const text = `${row.question ?? row.problem}\n${row.answer}`;
      assert.deepEqual([...tok.encode(text)], ref.encode(text));
    }
  });

  it('round-trips decode(encode(x)) === x', () => {
    for (const text of CORPUS) assert.equal(tok.decode(tok.encode(text)), text, JSON.stringify(text));
    // NFC normalization: a decomposed é encodes like the composed one.
    assert.deepEqual([...tok.encode('cafe\u0301')], [...tok.encode('caf\u00e9')]);
  });

  it('skips special tokens on request', () => {
    const ids = tok.encode('<|im_start|>user\nhi<|im_end|>');
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'user\nhi');
  });

  it('leaves out ids past the vocabulary and rejects invalid ids', () => {
    // Qwen2.5 checkpoints pad the embedding to 151936 rows; those ids have no token.
    assert.equal(tok.decode([14990, 151665, 151935, 1879]), 'hello world');
    const stream = tok.createStreamDecoder();
    assert.equal(stream.push([14990, 151700]), 'hello');
    assert.throws(() => tok.decode([1, -1]), /token id -1 at index 1/);
    assert.throws(() => tok.decode([1.5]), RangeError);
  });

  it('streams text without ever emitting half a UTF-8 character', () => {
    let sawSplitChar = false;
    for (const text of CORPUS) {
      for (const skip of [false, true]) {
        const ids = tok.encode(text);
        const stream = tok.createStreamDecoder({ skipSpecialTokens: skip });
        let out = '';
        for (const id of ids) {
          const piece = stream.push(id);
          assert.ok(!piece.includes('\uFFFD'), `chunk with U+FFFD in ${JSON.stringify(text)}`);
          assert.ok(
            !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(piece),
            'lone surrogate',
          );
          if (tok.decode([id]).includes('\uFFFD')) sawSplitChar = true;
          out += piece;
        }
        out += stream.flush();
        assert.equal(out, tok.decode(ids, { skipSpecialTokens: skip }));
      }
    }
    // The corpus really has characters that span several tokens.
    assert.ok(sawSplitChar);
  });

  it('holds back an incomplete character and releases it with the next token', () => {
    const ids = tok.encode('🦩');
    assert.ok(ids.length > 1, 'flamingo should take several byte-level tokens');
    const stream = tok.createStreamDecoder();
    for (let i = 0; i < ids.length - 1; i++) assert.equal(stream.push(ids[i] as number), '');
    assert.equal(stream.push(ids[ids.length - 1] as number), '🦩');
    // A stream that ends mid-character flushes U+FFFD, like decode().
    const cut = tok.createStreamDecoder();
    cut.push(ids.subarray(0, 1));
    assert.equal(cut.flush(), tok.decode(ids.subarray(0, 1)));
  });

  it('works with a non-byte-level (byte-fallback, BOS-adding) tokenizer too', async () => {
    // A tiny Llama-2-style tokenizer: Metaspace-like normalizer, BPE with byte fallback
    // (€ = <0xE2><0x82><0xAC>), a BOS from the post-processor, no chat template.
    const small = await loadTokenizer(`${FIXTURES}/byte-fallback-tokenizer`);
    const ids = small.encode('a b €a');
    assert.deepEqual([...ids], [1, 9, 10, 6, 3, 4, 5, 7]);
    assert.deepEqual([...small.encode('a', { addSpecialTokens: false })], [9]);
    assert.equal(small.bosId, 1);
    assert.equal(small.eosId, 2);
    assert.deepEqual([...small.stopIds], [2]);
    assert.equal(small.decode(ids, { skipSpecialTokens: true }), 'a b €a');
    const stream = small.createStreamDecoder({ skipSpecialTokens: true });
    const parts = [...ids].map((id) => stream.push(id));
    parts.push(stream.flush());
    assert.deepEqual(parts, ['', 'a', ' b', ' ', '', '', '€', 'a', '']);
    assert.throws(() => small.applyChatTemplate([{ role: 'user', content: 'x' }]), /has no chat_template/);
  });

  it('names the file when tokenizer files are missing or broken', async () => {
    await assert.rejects(loadTokenizer('no/such/folder'), /no\/such\/folder/);
    await assert.rejects(loadTokenizer(`${FIXTURES}/bad-tokenizer`), /bad-tokenizer\/tokenizer\.json: invalid JSON/);
    const empty = await mkdtemp(path.join(os.tmpdir(), 'motif-tok-'));
    await assert.rejects(loadTokenizer(empty), /tokenizer\.json: cannot read/);
    await writeFile(path.join(empty, 'tokenizer.json'), '{"model": {}}');
    await assert.rejects(loadTokenizer(empty), /no model\.vocab/);
  });
});
