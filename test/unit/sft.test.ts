/**
 * sft.test.ts — SFT data handling without the engine: both row shapes chat-formatted with the real
 * Qwen2.5 template (the prompt + response tokens decode to exactly the template's rendering of the
 * whole conversation), bad rows rejected with file:line errors, truncation at maxLength, and the
 * `sft --help` text.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadTokenizer, type Tokenizer } from '../../lib/text/tokenizer.js';
import {
  endOfTurnId,
  formatSftExample,
  readSftDataset,
  type SftTokenizer,
  sft,
  sftExampleFromRow,
} from '../../lib/train/sft.js';
import { FakeTrainable, fakeTokenizer } from '../helpers/fake-trainable.js';

const QWEN = '../shared/data/tokenizer/qwen2.5';
let tok: Tokenizer;
let tmp: string;
before(async () => {
  tok = await loadTokenizer(QWEN);
  tmp = await mkdtemp(path.join(os.tmpdir(), 'motif-sft-unit-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('formatting', () => {
  it('a {prompt, response} pair is the template rendering of system + user + assistant', () => {
    const t = formatSftExample(tok, { prompt: 'What is 2+2?', response: 'It is 4.', system: 'Be brief.' }, 1000);
    assert.ok(t);
    assert.equal(t.truncated, false);
    const text = tok.decode([...t.promptIds, ...t.completionIds]);
    // Written out by hand from Qwen2.5's template (SOURCES.md shows the same layout).
    assert.equal(
      text,
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\nIt is 4.<|im_end|>',
    );
    assert.equal(tok.decode(t.completionIds), 'It is 4.<|im_end|>');
    assert.equal(t.completionIds.at(-1), tok.tokenToId('<|im_end|>'));
    assert.equal(endOfTurnId(tok), tok.tokenToId('<|im_end|>'));
  });

  it("without a system prompt, Qwen's default one is used (as the template does)", () => {
    const t = formatSftExample(tok, { prompt: 'Hi', response: 'Hello' }, 1000);
    assert.ok(t);
    assert.ok(tok.decode(t.promptIds).startsWith('<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.'));
  });

  it('a conversation: earlier turns are the prompt, the last assistant turn the response', () => {
    const messages = [
      { role: 'system', content: 'S' },
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'first answer' },
      { role: 'user', content: 'second question' },
      { role: 'assistant', content: 'second answer' },
    ];
    const t = formatSftExample(tok, { messages }, 1000);
    assert.ok(t);
    assert.equal(tok.decode(t.completionIds), 'second answer<|im_end|>');
    // prompt + completion + "\n" is exactly the template's rendering of the whole conversation
    const whole = tok.applyChatTemplate(messages);
    assert.equal(`${tok.decode([...t.promptIds, ...t.completionIds])}\n`, whole);
    assert.ok(tok.decode(t.promptIds).includes('first answer<|im_end|>'));
  });

  it('truncation: cut at maxLength at the end; dropped when the prompt fills it', () => {
    const ex = { prompt: 'Hi', response: 'one two three four five six seven eight nine ten', system: 'S' };
    const full = formatSftExample(tok, ex, 1000);
    assert.ok(full);
    const P = full.promptIds.length;
    const cut = formatSftExample(tok, ex, P + 3);
    assert.ok(cut);
    assert.equal(cut.truncated, true);
    assert.deepEqual(cut.completionIds, full.completionIds.slice(0, 3));
    assert.deepEqual(cut.promptIds, full.promptIds);
    const exact = formatSftExample(tok, ex, P + full.completionIds.length);
    assert.equal(exact?.truncated, false);
    assert.equal(formatSftExample(tok, ex, P), null);
    assert.equal(formatSftExample(tok, ex, P - 1), null);
  });
});

describe('rows and files', () => {
  it('accepts both shapes and "completion" for "response"', () => {
    assert.deepEqual(sftExampleFromRow({ prompt: 'a', completion: 'b', extra: 1 }, 'x:1'), {
      prompt: 'a',
      response: 'b',
    });
    const m = [
      { role: 'user', content: 'q' },
      { role: 'assistant', content: 'r' },
    ];
    assert.deepEqual(sftExampleFromRow({ messages: m }, 'x:1'), { messages: m });
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['not an object', [1, 2], /expected a JSON object/],
    ['no response', { prompt: 'a' }, /"response" \(or "completion"\) must be a non-empty string/],
    ['empty response', { prompt: 'a', response: '' }, /non-empty/],
    ['prompt not a string', { prompt: 3, response: 'b' }, /"prompt" must be a string/],
    ['system not a string', { prompt: 'a', response: 'b', system: 1 }, /"system" must be a string/],
    ['messages too short', { messages: [{ role: 'assistant', content: 'x' }] }, /at least two/],
    [
      'last turn not the assistant',
      {
        messages: [
          { role: 'user', content: 'q' },
          { role: 'user', content: 'r' },
        ],
      },
      /last message must be the assistant's response.*got role "user"/,
    ],
    [
      'content not a string',
      {
        messages: [
          { role: 'user', content: 5 },
          { role: 'assistant', content: 'r' },
        ],
      },
      /messages\[0\]\.content must be a string/,
    ],
  ];
  for (const [label, row, re] of bad)
    it(`rejects: ${label}`, () => {
      assert.throws(
        () => sftExampleFromRow(row, 'data.jsonl:7'),
        (e: Error & { code?: string }) =>
          e.code === 'ERR_MOTIF_FORMAT' && /^data\.jsonl:7: /.test(e.message) && re.test(e.message),
      );
    });

  it('readSftDataset names file:line for a bad row and for invalid JSON; blank lines are skipped', async () => {
    const file = path.join(tmp, 'bad.jsonl');
    await writeFile(file, '{"prompt":"a","response":"b"}\n\n{"prompt":"a"}\n');
    await assert.rejects(readSftDataset(file), (e: Error) => e.message.startsWith(`${file}:3: `));
    const file2 = path.join(tmp, 'json.jsonl');
    await writeFile(file2, '{"prompt":"a","response":"b"}\n{"prompt": \n');
    await assert.rejects(readSftDataset(file2), (e: Error) => e.message.startsWith(`${file2}:2: invalid JSON`));
    const good = path.join(tmp, 'good.jsonl');
    await writeFile(
      good,
      '{"prompt":"a","response":"b"}\n\n{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"r"}]}\n',
    );
    assert.equal((await readSftDataset(good)).length, 2);
    const empty = path.join(tmp, 'empty.jsonl');
    await writeFile(empty, '\n');
    await assert.rejects(readSftDataset(empty), /no examples/);
    await assert.rejects(
      readSftDataset(path.join(tmp, 'missing.jsonl')),
      (e: Error & { code?: string }) => e.code === 'ERR_MOTIF_IO',
    );
  });
});

describe('the training loop (fake model, no engine)', () => {
  const charTokenizer: SftTokenizer = {
    encode: (text: string) => Int32Array.from(text, (ch) => ch.charCodeAt(0)),
    encodeChat: (messages, options) => fakeTokenizer.encodeChat(messages, options),
    imEndId: 1,
    eosId: null,
    tokenToId: () => undefined,
  };
  it('epochs, micro-batches, seeded order, NaN/Inf skips, metrics and adapter', async () => {
    const model = new FakeTrainable({ answers: {}, nanLossAtCall: [2], nanGradAtCall: [4] });
    const examples = Array.from({ length: 5 }, (_, i) => ({ prompt: `q${i}`, response: `answer ${i}` }));
    const outDir = path.join(tmp, 'fake-run');
    const seen: boolean[] = [];
    const r = await sft(model, examples, {
      outDir,
      epochs: 2,
      batchSize: 2,
      gradAccum: 2,
      lr: 1e-3,
      warmupRatio: 0,
      seed: 3,
      lora: { rank: 2, alpha: 4 },
      tokenizer: charTokenizer,
      log: () => {},
      onStep: (m) => {
        seen.push(m.skipped);
      },
    });
    // 5 examples, 4 per step: 2 steps an epoch (2 + 1 micro-batches), 6 loss calls in all
    assert.equal(r.steps, 4);
    assert.equal(model.lossCalls, 6);
    assert.deepEqual(
      model.batches.map((b) => b.completionIds.length),
      [2, 2, 1, 2, 2, 1],
    );
    // call 2 (step 1) has a NaN loss, call 4 (step 3) a NaN gradient: both updates skipped
    assert.deepEqual(seen, [true, false, true, false]);
    assert.equal(r.skippedSteps, 2);
    for (const b of model.batches) {
      assert.equal(b.lossType, 'sft');
      assert.equal(b.groupSize, 1);
      for (const c of b.completionIds) assert.equal(c.at(-1), 1, 'each response ends with the end-of-turn id');
    }
    // every example once per epoch, in a seeded order that differs between epochs
    const responses = model.batches.map((b) => b.completionIds.map((c) => String.fromCharCode(...c.slice(0, -1))));
    const epoch1 = responses.slice(0, 3).flat();
    const epoch2 = responses.slice(3).flat();
    const all = examples.map((e) => e.response).sort();
    assert.deepEqual([...epoch1].sort(), all);
    assert.deepEqual([...epoch2].sort(), all);
    assert.notDeepEqual(epoch1, epoch2);
    const lines = (await readFile(path.join(outDir, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => [l.step, l.skipped, l.examples]),
      [
        [1, true, 4],
        [2, false, 1],
        [3, true, 4],
        [4, false, 1],
      ],
    );
    assert.match(lines[0].warning, /non-finite loss/);
    assert.match(lines[2].warning, /non-finite gradient/);
    assert.equal(lines[0].gradNorm, null);
    assert.ok((await readFile(path.join(outDir, 'adapter', 'adapter_config.json'), 'utf8')).includes('"r": 2'));
  });
});

/** Runs `motif-native` (lib/cli/cli.ts through tsx) with `args`. */
const cli = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'lib/cli/cli.ts', ...args], { encoding: 'utf8' });

describe('sft command line', () => {
  it('--help explains every flag, the LoRA flags shared with train', () => {
    const r = cli(['sft', '--help']);
    assert.equal(r.status, 0, r.stderr);
    for (const flag of [
      '--model',
      '--dataset',
      '--out',
      '--epochs',
      '--lr',
      '--batch-size',
      '--grad-accum',
      '--max-length',
      '--seed',
      '--warmup-ratio',
      '--val-fraction',
      '--merge',
      '--lora-r',
      '--lora-alpha',
      '--lora-targets',
    ])
      assert.match(r.stdout, new RegExp(`${flag}\\s+\\S`), `${flag} is not in --help`);
    assert.match(r.stdout, /--lr\s+Peak learning rate[^[]*\[number\] \[default: 0\.0001\]/);
    assert.match(r.stdout, /--lora-r\s+LoRA rank r.*64/);
  });

  it('a bad flag value names the flag', () => {
    const r = cli(['sft', '--model', 'm', '--dataset', 'd.jsonl', '--out', 'o', '--epochs', '0']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--epochs: expected an integer in \[1, 1000000\], got 0/);
    const t = cli(['sft', '--model', 'm', '--dataset', 'd', '--out', 'o', '--lora-targets', 'q_proj,foo']);
    assert.match(t.stderr, /--lora-targets: "foo" is not one of/);
    const m = cli(['sft', '--dataset', 'd']);
    assert.match(m.stderr, /--model is required/);
  });
});
