// Reward tests on hand-written responses: well-formed, multi-line, missing tags, text after
// the answer, boxed in the wrong round, several boxes; the official xmlcount arithmetic worked
// out by hand; MOTIF's outcome averaged over k trajectories; weights and totals; user modules.

import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import {
  computeRewards,
  correctnessReward,
  countXml,
  grpoRewards,
  loadRewardModule,
  motifOutcomeReward,
  motifRewards,
  outcomeScore,
  type RewardInput,
  softFormatOk,
  softFormatReward,
  strictFormatOk,
  strictFormatReward,
  xmlCountReward,
} from '../../lib/motif/index.js';
import { closeSymbolic } from '../../lib/text/index.js';

after(async () => {
  await closeSymbolic();
});

const WELL_FORMED = '<reasoning>\n2+2 is 4\n</reasoning>\n<answer>\n\\boxed{4}\n</answer>\n';
const MULTI_LINE = '<reasoning>\nFirst, 2+2.\nThat is 4.\n</reasoning>\n<answer>\nSo \\boxed{4}\n</answer>\n';
const NO_TAGS = 'The sum is 4, so the answer is \\boxed{4}.';
const TRAILING = '<reasoning>\nr\n</reasoning>\n<answer>\n\\boxed{4}\n</answer>\nextra';
const ONE_LINE = '<reasoning>r</reasoning> <answer>\\boxed{4}</answer>';
const DOUBLE_ANSWER = '<reasoning>\nr\n</reasoning>\n<answer>\na\n</answer>\n<answer>\nb\n</answer>\n';

const close = (a: number, b: number) => Math.abs(a - b) < 1e-12;

describe('format rewards (official definitions)', () => {
  it('xmlcount follows count_xml, penalties included', () => {
    assert.ok(close(countXml(WELL_FORMED), 0.5));
    assert.ok(close(countXml(MULTI_LINE), 0.5));
    assert.ok(close(countXml(NO_TAGS), 0));
    // "extra" follows the answer: -5*0.001 twice (after "\n</answer>\n" and after "\n</answer>" minus 1).
    assert.ok(close(countXml(TRAILING), 0.5 - 0.005 - 0.005));
    // No final newline: "\n</answer>\n" is absent, so the first penalty is the whole text's length.
    const noNl = '<reasoning>\nr\n</reasoning>\n<answer>\n4\n</answer>';
    assert.ok(close(countXml(noNl), 0.5 - [...noNl].length * 0.001 - (0 - 1) * 0.001));
    // Tags repeated: no credit for them.
    assert.ok(close(countXml(DOUBLE_ANSWER), 0.125 + 0.125 - 0 * 0.001));
    // Code points, not UTF-16 units, as Python's len().
    assert.ok(close(countXml(`${WELL_FORMED}😊`), 0.5 - 0.001 - 0.001));
    // One-line tags: none of the newline-delimited tags are there.
    assert.ok(close(countXml(ONE_LINE), 0));
  });

  it('soft format: reasoning then answer at the start, each on one line', () => {
    assert.ok(softFormatOk(ONE_LINE));
    assert.ok(softFormatOk('<reasoning>r</reasoning>\n<answer>a</answer> trailing'));
    assert.ok(!softFormatOk(WELL_FORMED)); // Python "." does not cross "\n"
    assert.ok(!softFormatOk(`preamble ${ONE_LINE}`)); // re.match anchors at the start
    assert.ok(!softFormatOk(NO_TAGS));
    assert.ok(softFormatOk(MULTI_LINE, true)); // the multi-line variant
  });

  it('strict format: the exact line layout with a final newline', () => {
    assert.ok(strictFormatOk(WELL_FORMED));
    assert.ok(strictFormatOk(`${WELL_FORMED}\n`)); // Python "$" matches before one final "\n"
    assert.ok(!strictFormatOk(`${WELL_FORMED}\n\n`));
    assert.ok(!strictFormatOk(WELL_FORMED.slice(0, -1))); // no final newline
    assert.ok(!strictFormatOk(MULTI_LINE));
    assert.ok(strictFormatOk(MULTI_LINE, true));
    assert.ok(!strictFormatOk(TRAILING));
    assert.ok(!strictFormatOk(ONE_LINE));
  });

  it('scores 0.5 through the RewardFn objects', async () => {
    const batch: RewardInput[] = [WELL_FORMED, ONE_LINE, NO_TAGS].map((response) => ({
      question: 'q',
      reference: '4',
      response,
    }));
    assert.deepEqual(await softFormatReward().score(batch), [0, 0.5, 0]);
    assert.deepEqual(await strictFormatReward().score(batch), [0.5, 0, 0]);
    assert.deepEqual(await xmlCountReward().score(batch), [0.5, 0, 0]);
  });
});

describe('MOTIF outcome reward', () => {
  const ref = '\\frac{1}{2}';
  const inAnswer = '<reasoning>\nhalf\n</reasoning>\n<answer>\n\\boxed{\\frac{1}{2}}\n</answer>\n';
  const inReasoningOnly =
    '<reasoning>\nmaybe \\boxed{\\frac{1}{2}}\n</reasoning>\n<answer>\n\\boxed{\\frac{1}{3}}\n</answer>\n';
  const wrong = '<reasoning>\nx\n</reasoning>\n<answer>\n\\boxed{2}\n</answer>\n';
  const unboxed = '<reasoning>\nx\n</reasoning>\n<answer>\n\\frac{1}{2}\n</answer>\n';
  const equivalent = '<reasoning>\nx\n</reasoning>\n<answer>\n\\boxed{0.5}\n</answer>\n';
  const hedged = '<answer>\n\\boxed{\\frac{1}{2}} or \\boxed{2}\n</answer>';
  const noTags = 'So it is \\boxed{\\frac{1}{2}}.';
  const unclosed = '<reasoning>\nx\n</reasoning>\n<answer>\n\\boxed{\\frac{1}{2}} and then the output was cut';

  it('scores one final response 2 / 1 / 0 (strict, as the official code)', () => {
    assert.equal(outcomeScore(inAnswer, ref), 2);
    assert.equal(outcomeScore(inReasoningOnly, ref), 1);
    assert.equal(outcomeScore(wrong, ref), 0);
    assert.equal(outcomeScore(unboxed, ref), 0);
    assert.equal(outcomeScore(equivalent, ref), 0); // strict: verbatim only
    assert.equal(outcomeScore(hedged, ref), 2); // strict: any box in the answer
    assert.equal(outcomeScore(noTags, ref), 2); // no <answer>: the whole text is the answer
    assert.equal(outcomeScore(unclosed, ref), 2); // closing tag missing
  });

  it('with answersMatch: equivalent answers count, only the last box of the answer earns 2', () => {
    assert.equal(outcomeScore(equivalent, ref, 'match'), 2);
    assert.equal(outcomeScore(inAnswer, ref, 'match'), 2);
    assert.equal(outcomeScore(inReasoningOnly, ref, 'match'), 1);
    assert.equal(outcomeScore(hedged, ref, 'match'), 1); // last box is 2: hedging earns 1 at most
    assert.equal(outcomeScore('<answer>\n\\boxed{2} no wait \\boxed{0.5}\n</answer>', ref, 'match'), 2);
    assert.equal(outcomeScore(wrong, ref, 'match'), 0);
  });

  it('averages over the k trajectories; only the final round counts', async () => {
    const r2 = '<reasoning>\nthink\n</reasoning>\n<answer>\n\\boxed{\\frac{1}{2}}\n</answer>\n'; // boxed, but not the final round
    const batch: RewardInput[] = [
      {
        question: 'q',
        reference: ref,
        response: 'round 1',
        trajectories: [
          [r2, inAnswer],
          [r2, wrong],
          [r2, inReasoningOnly],
          [r2, unboxed],
        ],
      },
      { question: 'q', reference: ref, response: 'round 1', trajectories: [[r2, wrong]] }, // boxed in the wrong round
      { question: 'q', reference: ref, response: inAnswer }, // no trajectories: the response is final
    ];
    const scores = await motifOutcomeReward().score(batch);
    assert.deepEqual(scores, [(2 + 0 + 1 + 0) / 4, 0, 2]);
  });

  it('totals the official set with weights and reports components', async () => {
    const batch: RewardInput[] = [
      {
        question: 'q',
        reference: '4',
        response: WELL_FORMED,
        trajectories: [['<answer>\n\\boxed{4}\n</answer>'], ['\\boxed{5}']],
      },
      { question: 'q', reference: '4', response: NO_TAGS, trajectories: [['nothing']] },
    ];
    const { total, components } = await computeRewards(motifRewards(), batch);
    assert.deepEqual(components.outcome, [1, 0]);
    assert.deepEqual(components.xmlcount, [0.5, 0]);
    assert.deepEqual(components.soft_format, [0, 0]);
    assert.deepEqual(components.strict_format, [0.5, 0]);
    assert.deepEqual(total, [2, 0]);
    const weighted = await computeRewards([motifOutcomeReward({ weight: 0.5 }), xmlCountReward({ weight: 2 })], batch);
    assert.deepEqual(weighted.total, [0.5 * 1 + 2 * 0.5, 0]);
  });
});

describe('single-round correctness (GRPO)', () => {
  it('2 when the reference is boxed (strict) or matches (match)', async () => {
    const batch: RewardInput[] = [
      { question: 'q', reference: '18', response: WELL_FORMED.replace('4}', '18}') },
      { question: 'q', reference: '18', response: 'answer: \\boxed{18.0}' },
      { question: 'q', reference: '18', response: 'the answer is 18' },
      { question: 'q', reference: '18', response: '\\boxed{17}' },
    ];
    assert.deepEqual(await correctnessReward().score(batch), [2, 0, 0, 0]);
    assert.deepEqual(await correctnessReward({ metric: 'match' }).score(batch), [2, 2, 2, 0]);
    const { total } = await computeRewards(grpoRewards(), batch);
    assert.deepEqual(total, [0.5 + 0.5 + 2, 0, 0, 0]);
  });
});

describe('computeRewards checks and user modules', () => {
  const batch: RewardInput[] = [{ question: 'q', reference: '1', response: 'r' }];

  it('names the reward that misbehaves', async () => {
    await assert.rejects(
      computeRewards([{ name: 'short', weight: 1, score: () => [] }], batch),
      /reward "short" returned 0 scores for 1 inputs/,
    );
    await assert.rejects(
      computeRewards([{ name: 'nan', weight: 1, score: () => [Number.NaN] }], batch),
      /reward "nan" returned a non-finite score/,
    );
    await assert.rejects(
      computeRewards([{ name: 'boom', weight: 1, score: async () => Promise.reject(new Error('bad')) }], batch),
      /reward "boom" failed: bad/,
    );
    await assert.rejects(
      computeRewards([xmlCountReward(), xmlCountReward()], batch),
      /two rewards are named "xmlcount"/,
    );
  });

  it('loads functions and reward objects from a module', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'motif-rw-'));
    const named = path.join(dir, 'named.mjs');
    await writeFile(
      named,
      [
        'export function lengthPenalty(batch) { return batch.map((x) => -x.response.length / 100); }',
        'lengthPenalty.weight = 0.5;',
        'export const mentionsQuestion = { name: "mentions", weight: 2, async score(batch) { return batch.map((x) => (x.response.includes(x.question) ? 1 : 0)); } };',
      ].join('\n'),
    );
    const rewards = await loadRewardModule(named);
    assert.deepEqual(
      rewards.map((r) => [r.name, r.weight]),
      [
        ['lengthPenalty', 0.5],
        ['mentions', 2],
      ],
    );
    const { total, components } = await computeRewards(rewards, [
      { question: 'abc', reference: '1', response: 'xx abc xx' },
    ]);
    assert.deepEqual(components.lengthPenalty, [-0.09]);
    assert.ok(close(total[0] as number, 0.5 * -0.09 + 2));

    const def = path.join(dir, 'default.mjs');
    await writeFile(
      def,
      'export default [function one(b) { return b.map(() => 1); }, { score: (b) => b.map(() => 2) }];',
    );
    assert.deepEqual(
      (await loadRewardModule(def)).map((r) => r.name),
      ['one', 'default[1]'],
    );

    const bad = path.join(dir, 'bad.mjs');
    await writeFile(bad, 'export const notAReward = 42;');
    await assert.rejects(loadRewardModule(bad), /bad\.mjs: export "notAReward" is not a reward/);
    const broken = path.join(dir, 'broken.mjs');
    await writeFile(broken, 'export default (;');
    await assert.rejects(loadRewardModule(broken), /broken\.mjs: cannot load reward module/);
    await assert.rejects(loadRewardModule(path.join(dir, 'missing.mjs')), /missing\.mjs: cannot load reward module/);
  });
});
