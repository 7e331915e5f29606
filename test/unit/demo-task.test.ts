// Demo task tests: generated rows (shape, reproducibility, answers checked against hand-summed
// chains), the round responses written out by hand, the protocol's rewards on them (strict format,
// xmlcount, MOTIF outcome), traces through the round protocol with and without dropped progress,
// settings validation, and the per-round token budget measured with the demo tokenizer.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRng } from '../../lib/data/random.js';
import { demoMaxTokens, demoResponseTokens } from '../../lib/demo/settings.js';
import {
  demoRoundResponse,
  demoTemplates,
  formatDemoProgress,
  formatDemoQuestion,
  generateDemoRows,
  parseDemoProgress,
  parseDemoQuestion,
  resolveDemoTask,
  solveDemo,
} from '../../lib/demo/task.js';
import { demoTokenizerConfig, demoTokenizerJson } from '../../lib/demo/tokenizer.js';
import { demoTraces, neverDrop, valueDropRule } from '../../lib/demo/traces.js';
import { extractProgress, roundUserMessage } from '../../lib/motif/protocol.js';
import { countXml, motifOutcomeReward, strictFormatOk } from '../../lib/motif/rewards.js';
import { MotifError } from '../../lib/native/errors.js';
import { Tokenizer } from '../../lib/text/tokenizer.js';

const Q = 'a3, b7, c1, d9, e4, f2, g8, h5, i0, j6, k2, l9'; // 3+7+1+9+4+2+8+5+0+6+2+9 = 56 → 6
const task = resolveDemoTask({ length: 12, rounds: 3 });

describe('demo task: problems', () => {
  it('solves a hand-summed chain', () => {
    assert.equal(solveDemo(Q), '6');
    assert.equal(solveDemo('a9, b9'), '8');
    assert.deepEqual(parseDemoQuestion('a0, b5'), [0, 5]);
    assert.equal(formatDemoQuestion([0, 5, 7]), 'a0, b5, c7');
  });

  it('rejects text that is not a demo question, naming the place', () => {
    assert.throws(
      () => parseDemoQuestion('a3, c7'),
      (e: unknown) => e instanceof MotifError && /pair 2 should be 'b'/.test(e.message),
    );
    assert.throws(() => parseDemoQuestion('a3, b'), MotifError);
    assert.throws(() => parseDemoQuestion(''), MotifError);
    assert.throws(() => parseDemoQuestion('a3, bx'), MotifError);
    assert.throws(() => parseDemoQuestion('a3b7'), MotifError);
  });

  it('generates reproducible rows in the dataset shape with correct answers', () => {
    const a = generateDemoRows(50, 7, { length: 6, maxDigit: 4 });
    const b = generateDemoRows(50, 7, { length: 6, maxDigit: 4 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, generateDemoRows(50, 8, { length: 6, maxDigit: 4 }));
    assert.equal(new Set(a.map((r) => r.id)).size, 50);
    for (const r of a) {
      assert.match(r.question, /^a[0-4], b[0-4], c[0-4], d[0-4], e[0-4], f[0-4]$/);
      let s = 0;
      for (const ch of r.question.replace(/[^0-9]/g, '')) s += Number(ch);
      assert.equal(r.answer, String(s % 10));
    }
  });

  it('checks its settings and names the bad one', () => {
    assert.deepEqual(resolveDemoTask(), { length: 12, rounds: 3, maxDigit: 9, stepsPerRound: 4 });
    assert.equal(resolveDemoTask({ length: 10, rounds: 3 }).stepsPerRound, 4);
    assert.throws(() => resolveDemoTask({ length: 27 }), /length/);
    assert.throws(() => resolveDemoTask({ maxDigit: 10 }), /maxDigit/);
    assert.throws(() => resolveDemoTask({ length: 12, rounds: 3, stepsPerRound: 3 }), /stepsPerRound/);
    assert.throws(() => resolveDemoTask({ rounds: 0 }), MotifError);
    assert.throws(() => generateDemoRows(-1, 1), /count/);
  });
});

describe('demo task: round responses', () => {
  it('writes the first round, carrying the next label and the running value', () => {
    const r = demoRoundResponse(Q, { next: 0, value: 0 }, false, task);
    assert.equal(r.response, '<reasoning>\na0 3:3 7:0 1:1 9:0\n</reasoning>\n<answer>\ne0\n</answer>\n');
    assert.deepEqual(r.after, { next: 4, value: 0 });
  });

  it('continues from a progress and boxes the value in the final round', () => {
    const r2 = demoRoundResponse(Q, { next: 4, value: 0 }, false, task);
    assert.equal(r2.response, '<reasoning>\ne0 4:4 2:6 8:4 5:9\n</reasoning>\n<answer>\ni9\n</answer>\n');
    const r3 = demoRoundResponse(Q, { next: 8, value: 9 }, true, task);
    assert.equal(r3.response, '<reasoning>\ni9 0:9 6:5 2:7 9:6\n</reasoning>\n<answer>\n\\boxed{6}\n</answer>\n');
  });

  it('hands on its label with value 0 when it drops its progress', () => {
    const r = demoRoundResponse(Q, { next: 4, value: 0 }, false, task, true);
    assert.match(r.response, /<answer>\ni0\n<\/answer>\n$/);
    assert.deepEqual(r.after, { next: 8, value: 9 });
  });

  it('passes the protocol rewards: strict format, full xmlcount, outcome 2 when right', async () => {
    const r1 = demoRoundResponse(Q, { next: 0, value: 0 }, false, task).response;
    const r3 = demoRoundResponse(Q, { next: 8, value: 9 }, true, task).response;
    assert.ok(strictFormatOk(r1));
    assert.ok(strictFormatOk(r3));
    assert.equal(countXml(r1), 0.5);
    const outcome = motifOutcomeReward();
    const wrong = demoRoundResponse(Q, { next: 8, value: 0 }, true, task).response; // boxes 7
    const scores = await outcome.score([
      { question: Q, reference: '6', response: r1, trajectories: [['x', r3]] },
      { question: Q, reference: '6', response: r1, trajectories: [['x', wrong]] },
    ]);
    assert.deepEqual(scores, [2, 0]);
  });

  it('progress texts round-trip', () => {
    assert.equal(formatDemoProgress({ next: 4, value: 0 }), 'e0');
    assert.deepEqual(parseDemoProgress(' i9 '), { next: 8, value: 9 });
    assert.equal(parseDemoProgress('e10'), null);
    assert.equal(parseDemoProgress('reasoning'), null);
  });

  it('uses the protocol templates with its own short texts', () => {
    const t = demoTemplates();
    assert.equal(
      roundUserMessage(Q, 3, { rounds: 3, progress: 'i9', templates: t }),
      `${Q} Final round now Progress is: i9`,
    );
  });
});

describe('demo task: traces through the protocol', () => {
  it('a correct worker ends with the right boxed answer', () => {
    const [row] = generateDemoRows(1, 3);
    assert.ok(row);
    const ex = demoTraces(row, task, neverDrop, createRng(1));
    assert.equal(ex.length, 3);
    assert.deepEqual(
      ex.map((e) => e.round),
      [1, 2, 3],
    );
    assert.ok(ex[2]?.response.includes(`\\boxed{${row.answer}}`));
    // Round 2's user message carries round 1's <answer> as its progress.
    assert.ok(ex[1]?.messages[1]?.content?.endsWith(`Progress is: ${extractProgress(ex[0]?.response ?? '')}`));
    assert.equal(ex[0]?.messages[0]?.content, 'Sum the digits mod 10 in 3 rounds.');
  });

  it('dropping every progress restarts each round from value 0', () => {
    const rows = generateDemoRows(20, 4);
    let right = 0;
    for (const row of rows) {
      const ex = demoTraces(row, task, valueDropRule(1, 1), createRng(2));
      assert.ok(ex[0]?.dropped && ex[0].response.includes('<answer>\ne0\n'));
      assert.ok(ex[1]?.dropped && ex[1].response.includes('<answer>\ni0\n'));
      assert.ok(ex[2]?.messages[1]?.content?.endsWith('Progress is: i0'));
      // The final round then sums only the last four digits.
      const last4 = parseDemoQuestion(row.question)
        .slice(8)
        .reduce((a, b) => a + b, 0);
      assert.ok(ex[2]?.response.includes(`\\boxed{${last4 % 10}}`));
      if (last4 % 10 === Number(row.answer)) right++;
    }
    assert.ok(right < 10);
  });

  it('the value rule drops by the value reached', () => {
    const rule = valueDropRule(1, 0);
    const rng = createRng(0);
    assert.equal(rule({ next: 4, value: 5 }, rng), true);
    assert.equal(rule({ next: 4, value: 4 }, rng), false);
    assert.throws(() => valueDropRule(1.5, 0), RangeError);
  });
});

describe('demo task: prompt layout', () => {
  const tok = new Tokenizer({ tokenizerJson: demoTokenizerJson(), tokenizerConfig: demoTokenizerConfig() });
  it('each later round prompt is four tokens per step longer, so lookups stay at a fixed distance', () => {
    const [row] = generateDemoRows(1, 9);
    assert.ok(row);
    const lengths = demoTraces(row, task, neverDrop, createRng(3)).map(
      (e) => tok.encodeChat(e.messages, { addGenerationPrompt: true }).length,
    );
    assert.equal(lengths[1], (lengths[0] as number) + 4 * task.stepsPerRound);
    assert.equal(lengths[2], (lengths[0] as number) + 8 * task.stepsPerRound);
    // A question pair and a step are both four tokens.
    assert.equal(tok.encode('a3, ').length, 4);
    assert.equal(tok.encode(' 3:3').length, 4);
  });
});

describe('demo task: token budget', () => {
  const tok = new Tokenizer({ tokenizerJson: demoTokenizerJson(), tokenizerConfig: demoTokenizerConfig() });
  it('the budget holds a full round (final round is the longest) but not one more step', () => {
    for (const steps of [2, 4, 6]) {
      const t = resolveDemoTask({ length: 3 * steps, rounds: 3 });
      const q = generateDemoRows(1, steps, t)[0]?.question ?? '';
      const final = demoRoundResponse(q, { next: 2 * steps, value: 3 }, true, t).response;
      const measured = tok.encode(final, { addSpecialTokens: false }).length + 1; // + <|im_end|>
      assert.equal(demoResponseTokens(steps), measured);
      const longer = demoRoundResponse(
        q,
        { next: 0, value: 3 },
        true,
        resolveDemoTask({ length: 3 * steps, rounds: 3, stepsPerRound: steps + 1 }),
      );
      assert.ok(tok.encode(longer.response, { addSpecialTokens: false }).length + 1 > demoMaxTokens(t));
      assert.ok(demoMaxTokens(t) >= measured);
    }
  });
});
