// Demo tokenizer tests: the code-made tokenizer.json / tokenizer_config.json load through
// lib/text's loader from a folder, encode/decode round-trip any text (byte-level), the protocol tags
// and chat tokens are single ids (tags kept when special tokens are skipped), streaming decode
// matches, and the chat template renders ChatML exactly as written out here by hand.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  DEMO_SPECIAL_TOKENS,
  DEMO_TEXT_TOKENS,
  DEMO_VOCAB_SIZE,
  demoTokenizerConfig,
  demoTokenizerJson,
} from '../../lib/demo/tokenizer.js';
import { loadTokenizer, type Tokenizer } from '../../lib/text/tokenizer.js';

describe('demo tokenizer', () => {
  let dir: string;
  let tok: Tokenizer;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'demo-tok-'));
    await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(demoTokenizerJson()));
    await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify(demoTokenizerConfig()));
    tok = await loadTokenizer(dir);
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('has 256 byte ids plus the added tokens, and stops on <|im_end|>', () => {
    assert.equal(tok.vocabSize, DEMO_VOCAB_SIZE);
    assert.equal(DEMO_VOCAB_SIZE, 256 + 3 + 5);
    assert.equal(tok.eosId, tok.tokenToId('<|im_end|>'));
    assert.equal(tok.padId, tok.tokenToId('<|endoftext|>'));
    assert.ok(tok.stopIds.includes(tok.imEndId as number));
  });

  it('encodes ASCII one id per character (the byte value)', () => {
    assert.deepEqual(Array.from(tok.encode('a3b7 \n')), [97, 51, 98, 55, 32, 10]);
  });

  it('keeps every tag and chat token a single id', () => {
    for (const t of [...DEMO_SPECIAL_TOKENS, ...DEMO_TEXT_TOKENS]) {
      const ids = tok.encode(`x${t}y`, { addSpecialTokens: false });
      assert.equal(ids.length, 3, t);
      assert.equal(ids[1], tok.tokenToId(t));
    }
  });

  it('round-trips text, including non-ASCII and tags, and streams the same text', () => {
    for (const text of [
      '<reasoning>\na0 a3:3\n</reasoning>\n<answer>\n\\boxed{6}\n</answer>\n',
      'héllo — 数学 ✓',
      '{}\\boxed{ <answer',
    ]) {
      const ids = tok.encode(text);
      assert.equal(tok.decode(ids), text);
      const s = tok.createStreamDecoder();
      let streamed = '';
      for (const id of ids) streamed += s.push(id);
      assert.equal(streamed + s.flush(), text);
    }
  });

  it('skips only the chat tokens when asked', () => {
    const ids = tok.encode('<|im_start|><answer>\n7</answer><|im_end|>', { addSpecialTokens: false });
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), '<answer>\n7</answer>');
  });

  it('renders the ChatML chat template', () => {
    const text = tok.applyChatTemplate(
      [
        { role: 'system', content: 'Sum.' },
        { role: 'user', content: 'a3b7' },
      ],
      { addGenerationPrompt: true },
    );
    assert.equal(text, '<|im_start|>system\nSum.<|im_end|>\n<|im_start|>user\na3b7<|im_end|>\n<|im_start|>assistant\n');
    const ids = tok.encodeChat([{ role: 'user', content: 'a' }], { addGenerationPrompt: false });
    assert.deepEqual(Array.from(ids), [tok.imStartId, ...Array.from(Buffer.from('user\na')), tok.imEndId, 10]);
  });
});
