// MOTIF round protocol tests: the default prompts equal the official MOTIF code's text
// (transcribed here by hand), the round messages follow its construction, progress
// extraction tolerates a missing closing tag, templates load from JSON with errors naming
// the file, and the rendered Qwen2.5 prompt of a round is exact.

import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';

import {
  baseMessages,
  DEFAULT_TEMPLATES,
  extractProgress,
  loadTemplates,
  motifSystemPrompt,
  nextRoundMessages,
  ordinal,
  resolveTemplates,
  roundMessages,
  roundUserMessage,
  singleRoundMessages,
} from '../../lib/motif/index.js';
import { loadTokenizer, type Tokenizer } from '../../lib/text/index.js';

// purbeshmitra/MOTIF motif.py SYSTEM_PROMPT (a Python """…""" string that starts and ends
// with a newline; "\\boxed{}" in it is a single backslash).
const OFFICIAL_MOTIF_SYSTEM = `
You are a helpful assistant. When the user asks a question, you solve it in 3 rounds.
In each round, you first think about the reasoning process of answering and then provide the user with a detailed progress about it.
The reasoning process and the progress are enclosed within <reasoning> </reasoning> and <answer> </answer> tags respectively.
Therefore, you follow the strict format:
<reasoning>
reasoning process here
</reasoning>
<answer>
detailed progress here
</answer>

The User provides this detailed progress as additional context in the next round.
You then respond again with further thinking and further progress.
When the User says that current round is the final (third) round, you provide an answer inside the answer tags.
You also enclose a final answer in third round in the box: \\boxed{}. Only this boxed final answer is used for evaluation.
`;

// vanilla_grpo.py SYSTEM_PROMPT and SYSTEM_PROMPT_base.
const OFFICIAL_GRPO_SYSTEM = `You are a helpful assistant.
When the user asks a question, you first think about the reasoning process in mind and then provide the user with an answer.
The reasoning process and the answer are enclosed within <reasoning> </reasoning> and <answer> </answer> tags, respectively.
In your answer, you also enclose your final answer in the box: \\boxed{}.
Therefore, you respond in the following strict format:
<reasoning>
reasoning process here
</reasoning>
<answer>
answer here
</answer>
`;
const OFFICIAL_BASE_SYSTEM =
  'You are a helpful assistant. In your response, you enclose your final answer in the box: \\boxed{}.';

describe('MOTIF protocol', () => {
  let tok: Tokenizer;
  before(async () => {
    tok = await loadTokenizer('../shared/data/tokenizer/qwen2.5');
  });

  it('default prompts equal the official code', () => {
    assert.equal(motifSystemPrompt(3), OFFICIAL_MOTIF_SYSTEM);
    assert.equal(singleRoundMessages('Q')[0]?.content, OFFICIAL_GRPO_SYSTEM);
    assert.equal(baseMessages('Q')[0]?.content, OFFICIAL_BASE_SYSTEM);
    assert.ok(motifSystemPrompt(3).includes('\\boxed{}'));
  });

  it('builds the rounds as the official model_iteration does', () => {
    const q = 'What is 6*7?';
    // Round 1: the bare question.
    assert.equal(roundUserMessage(q, 1), q);
    // Round 2: question + progress of round 1.
    assert.equal(
      roundUserMessage(q, 2, { progress: 'I computed 6*7.' }),
      'What is 6*7? Progress in round 1: "I computed 6*7."',
    );
    // Round 3 (final): + progress of round 2 + final-round instruction.
    assert.equal(
      roundUserMessage(q, 3, { progress: 'It is 42.' }),
      'What is 6*7? Progress in round 2: "It is 42." Current round is the final (third) round. Provide a final answer.',
    );
    // Each round is a fresh [system, user] chat.
    const msgs = roundMessages(q, 2, { progress: 'p' });
    assert.deepEqual(
      msgs.map((m) => m.role),
      ['system', 'user'],
    );
    assert.equal(msgs[0]?.content, OFFICIAL_MOTIF_SYSTEM);
  });

  it('generalizes to R rounds', () => {
    assert.match(motifSystemPrompt(4), /solve it in 4 rounds\./);
    assert.match(motifSystemPrompt(4), /final \(fourth\) round/);
    assert.equal(roundUserMessage('Q', 3, { rounds: 4, progress: 'x' }), 'Q Progress in round 2: "x"');
    assert.equal(
      roundUserMessage('Q', 4, { rounds: 4, progress: 'y' }),
      'Q Progress in round 3: "y" Current round is the final (fourth) round. Provide a final answer.',
    );
    assert.equal(
      roundUserMessage('Q', 1, { rounds: 1 }),
      'Q Current round is the final (first) round. Provide a final answer.',
    );
    assert.equal(ordinal(2), 'second');
    assert.equal(ordinal(12), '12th');
    assert.equal(ordinal(22), '22nd');
    assert.throws(() => roundUserMessage('Q', 4), /round must be in 1\.\.3/);
    assert.throws(() => roundUserMessage('Q', 2), /needs the progress of round 1/);
    assert.throws(() => motifSystemPrompt(0), /positive integer/);
  });

  it('extracts progress from the last <answer>, with or without the closing tag', () => {
    assert.equal(
      extractProgress('<reasoning>\nr\n</reasoning>\n<answer>\nstep one done\n</answer>\n'),
      'step one done',
    );
    assert.equal(extractProgress('<answer>old</answer> more <answer>\nnew part, cut off'), 'new part, cut off');
    assert.equal(extractProgress('<reasoning>only reasoning</reasoning>'), '<reasoning>only reasoning</reasoning>');
    const next = nextRoundMessages('Q', '<answer>\nhalf way\n', 1);
    assert.equal(next[1]?.content, 'Q Progress in round 1: "half way"');
  });

  it('does not substitute placeholders found in the question or the progress', () => {
    assert.equal(
      roundUserMessage('What is {progress}?', 2, { progress: '{question} {finalPart}' }),
      'What is {progress}? Progress in round 1: "{question} {finalPart}"',
    );
  });

  it('renders a round with the Qwen2.5 chat template exactly', () => {
    const text = tok.applyChatTemplate(roundMessages('What is 2+2?', 3, { progress: '2+2=4' }), {
      addGenerationPrompt: true,
    });
    assert.equal(
      text,
      `<|im_start|>system\n${OFFICIAL_MOTIF_SYSTEM}<|im_end|>\n<|im_start|>user\nWhat is 2+2? Progress in round 2: "2+2=4" Current round is the final (third) round. Provide a final answer.<|im_end|>\n<|im_start|>assistant\n`,
    );
  });

  it('loads templates from a JSON file; errors name the file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'motif-tpl-'));
    const good = path.join(dir, 'templates.json');
    await writeFile(
      good,
      JSON.stringify({ progress: ' [round {round}] {progress}', finalRound: ' FINAL of {rounds}.' }),
    );
    const t = await loadTemplates(good);
    assert.equal(t.system, DEFAULT_TEMPLATES.system);
    assert.equal(roundUserMessage('Q', 3, { templates: t, progress: 'p' }), 'Q [round 2] p FINAL of 3.');
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, '{"sytem": "x"}');
    await assert.rejects(
      loadTemplates(bad),
      new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: unknown template "sytem"`),
    );
    await writeFile(bad, '{"progress": "no placeholder"}');
    await assert.rejects(loadTemplates(bad), /template "progress" must contain \{progress\}/);
    await writeFile(bad, '{"system": ');
    await assert.rejects(loadTemplates(bad), /bad\.json: invalid JSON/);
    await assert.rejects(loadTemplates(path.join(dir, 'none.json')), /none\.json: cannot read templates/);
    assert.throws(() => resolveTemplates({ system: 3 } as never), /must be a string/);
  });
});
