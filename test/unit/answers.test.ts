// Answer extraction and grading tests: a table of tricky equal / unequal pairs; every
// MATH-500 and AIME 2024 reference answer against itself, common re-formattings and a
// perturbed value; every GSM8K `#### N` extracted from its solution and matched; the time
// limit of the symbolic check; the strict (official) metric.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';

import {
  answersMatch,
  closeSymbolic,
  extractAnswer,
  extractXmlAnswer,
  findBoxed,
  gradeResponse,
  normalizeAnswer,
  strictMatch,
  symbolicEqual,
  symbolicTimeouts,
} from '../../lib/text/index.js';

const DATA = '../shared/data';

function readJsonl<T>(file: string): T[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);
}

/** Changes the first digit (or appends "+1"): a value that must not match. */
function perturb(a: string): string {
  const m = /\d/.exec(a);
  if (m) return a.slice(0, m.index) + String((Number(m[0]) + 1) % 10) + a.slice(m.index + 1);
  return `${a}+1`;
}

/** Removes spaces the way a person would (keeping the one after a command before a letter). */
function squeeze(a: string): string {
  return a
    .replace(/(\\[a-zA-Z]+) +(?=[a-zA-Z])/g, '$1\uE000')
    .replace(/ +/g, '')
    .replace(/\uE000/g, ' ');
}

after(async () => {
  await closeSymbolic();
});

describe('answersMatch: tricky pairs', () => {
  const equal: [string, string][] = [
    ['\\dfrac{1}{2}', '0.5'],
    ['\\frac12', '\\frac{1}{2}'],
    ['\\tfrac{3}{4}', '0.75'],
    ['\\frac 34', '3/4'],
    ['1,000', '1000'],
    ['1{,}000', '1000'],
    ['\\$32,\\!348', '32348'],
    ['10\\%', '10'],
    ['10\\%', '0.1'],
    ['25 percent', '\\frac{1}{4}'],
    ['90^\\circ', '90'],
    ['90^{\\circ}', '90'],
    ['x=3', '3'],
    ['x = 3', '3'],
    ['\\text{(C)}', 'C'],
    ['(C)', 'C'],
    ['\\text{Evelyn}', 'Evelyn'],
    ['\\text{Evelyn}', 'evelyn'],
    ['(1,2)', '(1, 2)'],
    ['\\left( 3, \\frac{\\pi}{2} \\right)', '(3,\\pi/2)'],
    ['[1,2)', '[1, 2)'],
    ['(-\\infty, 0]', '(-\\infty,0]'],
    ['x \\in [-2,7]', '[-2,7]'],
    ['(-\\infty, 2) \\cup (3, \\infty)', '(3,\\infty)\\cup(-\\infty,2)'],
    ['\\{1,2\\}', '\\{2,1\\}'],
    ['\\{1\\pm\\sqrt{5},-2\\}', '\\{-2, 1-\\sqrt5, 1+\\sqrt5\\}'],
    ['-2,1', '1, -2'],
    ['1 \\pm \\sqrt{19}', '1-\\sqrt{19}, 1+\\sqrt{19}'],
    ['\\sqrt{8}', '2\\sqrt{2}'],
    ['\\frac{\\sqrt{3}}{3}', '\\frac{1}{\\sqrt{3}}'],
    ['2\\pi', '\\pi+\\pi'],
    ['\\pi', '3.1416'],
    ['025', '25'],
    ['007', '7'],
    ['0.50', '0.5'],
    ['.5', '0.5'],
    ['2.0', '2'],
    ['3+2i', '2i+3'],
    ['\\frac{14}{3}', '4.6667'],
    ['137 \\frac{1}{2}', '137.5'],
    ['1\\frac{4}{5}', '\\frac{9}{5}'],
    ['x^2+2x+1', '(x+1)^2'],
    ['(a+5)(b+2)', 'ab+2a+5b+10'],
    ['\\cot x', '\\frac{\\cos x}{\\sin x}'],
    ['2k+2', '2(k+1)'],
    ['y = 2x + 3', 'y=3+2x'],
    ['5x - 7y + 11z + 4 = 0', '-5x+7y-11z-4=0'],
    ['15\\mbox{ cm}^2', '15'],
    ['5.4 \\text{ cents}', '5.4'],
    ['12 dollars', '12'],
    ['\\frac{270}7\\text{ degrees}', '\\frac{270}{7}'],
    ['204_5', '204_{5}'],
    ['\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}', '\\left(\\frac{1}{5}, -\\frac{18}{5}\\right)'],
    [
      '\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}',
      '\\begin{bmatrix}-1&0\\\\0&-1\\end{bmatrix}'.replace(/bmatrix/g, 'pmatrix'),
    ],
    ['$\\boxed{42}$', '42'],
    ['\\(\\frac{1}{2}\\)', '1/2'],
    ['−3', '-3'],
    ['x² + 1', 'x^2+1'],
    ['½', '0.5'],
    ['1e-3', '0.001'],
    ['1.5\\times10^{3}', '1500'],
  ];
  const unequal: [string, string][] = [
    ['(1,2)', '(2,1)'],
    ['[1,2)', '[1,2]'],
    ['(1,2)', '[1,2]'],
    ['\\{1,2\\}', '\\{1,2,3\\}'],
    ['2^{100}', '2^{100}+1'],
    ['\\frac{14}{3}', '4.67'],
    ['3', '3.001'],
    ['1000', '1001'],
    ['6 - 5i', '6+5i'],
    ['p - q', 'q - p'],
    ['x^2', '2x'],
    ['\\text{Evelyn}', '\\text{Navin}'],
    ['C', 'D'],
    ['\\sqrt{2}', '1.41'],
    ['\\pi', '3.14'],
    ['-2,1', '2,1'],
    ['10', '100'],
    ['x=3', 'y=4'],
    ['5x - 7y + 11z + 4 = 0', '5x - 7y + 11z + 5 = 0'],
    ['204_5', '205_5'],
    ['', '0'],
  ];
  it('equal pairs match (both ways)', () => {
    for (const [a, b] of equal) {
      assert.ok(answersMatch(a, b), `${a} = ${b}`);
      assert.ok(answersMatch(b, a), `${b} = ${a}`);
    }
  });
  it('unequal pairs do not match (both ways)', () => {
    for (const [a, b] of unequal) {
      assert.ok(!answersMatch(a, b), `${a} != ${b}`);
      assert.ok(!answersMatch(b, a), `${b} != ${a}`);
    }
    assert.equal(answersMatch(null, '0'), false);
    assert.equal(answersMatch(undefined, '0'), false);
  });
  it('can run without the symbolic check', () => {
    assert.ok(answersMatch('\\dfrac{1}{2}', '0.5', { symbolic: false }));
    assert.ok(!answersMatch('\\sqrt{8}', '2\\sqrt{2}', { symbolic: false }));
  });
});

describe('normalizeAnswer', () => {
  it('canonicalizes LaTeX spellings', () => {
    const cases: [string, string][] = [
      ['\\dfrac{1}{2}', '\\frac{1}{2}'],
      ['\\frac12', '\\frac{1}{2}'],
      ['\\frac9{19}', '\\frac{9}{19}'],
      ['\\sqrt2', '\\sqrt{2}'],
      ['\\left( 3, \\frac{\\pi}{2} \\right)', '(3,\\frac{\\pi}{2})'],
      ['10,\\!080', '10080'],
      ['\\text{(B)}', 'B'],
      ['864 \\mbox{ inches}^2', '864'],
      ['\\$18.90', '18.9'],
      ['x=5', '5'],
      ['\\cot x', '\\cot x'],
      ['4210_{5}', '4210_5'],
    ];
    for (const [a, b] of cases) assert.equal(normalizeAnswer(a), b, a);
  });
});

describe('extractAnswer', () => {
  it('takes the last box, nested braces included', () => {
    assert.equal(
      extractAnswer('so $\\boxed{\\frac{1}{2}}$ and finally \\boxed{\\dfrac{\\sqrt{3}}{2}}.'),
      '\\dfrac{\\sqrt{3}}{2}',
    );
    assert.equal(extractAnswer('\\fbox{7}'), '7');
    assert.equal(extractAnswer('The result is \\boxed 5 dollars'), '5');
    assert.equal(extractAnswer('\\boxed{\\text{(C)}}'), '\\text{(C)}');
    assert.deepEqual(
      findBoxed('\\boxed{1} x \\boxed{{2}} \\boxed{3').map((b) => b.content),
      ['1', '{2}'],
    );
  });
  it('falls back to <answer>, ####, "the answer is", the last number', () => {
    assert.equal(extractAnswer('<reasoning>\n2+2\n</reasoning>\n<answer>\n4\n</answer>\n'), '4');
    assert.equal(extractAnswer('<reasoning>x</reasoning><answer>\n17'), '17');
    assert.equal(extractAnswer('<answer>The total is 18 dollars.</answer>'), '18');
    assert.equal(extractAnswer('Step 1 ... 3 + 4 = 7\n#### 1,200'), '1,200');
    assert.equal(extractAnswer('Thus, the answer is $\\frac{3}{4}$, since 3 < 4.'), '\\frac{3}{4}');
    assert.equal(extractAnswer('Final answer: 12.'), '12');
    assert.equal(extractAnswer('I had 5 apples and ate 2, so 3 remain'), '3');
    assert.equal(extractAnswer('no numbers here'), null);
    assert.equal(extractAnswer(''), null);
  });
  it('extractXmlAnswer follows the official helper (last <answer>, closing tag optional, else the whole text)', () => {
    assert.equal(extractXmlAnswer('<answer>a</answer> <answer> b </answer>'), 'b');
    assert.equal(extractXmlAnswer('<answer>\nhalf done'), 'half done');
    assert.equal(extractXmlAnswer('  no tags  '), 'no tags');
  });
});

describe('answersMatch on MATH-500', () => {
  const rows = readJsonl<{ answer: string }>(`${DATA}/math500/test.jsonl`);
  it('has 500 rows', () => assert.equal(rows.length, 500));
  it('every answer matches itself and common re-formattings, and not a perturbed value', () => {
    for (const { answer } of rows) {
      const forms = [answer, `$${answer}$`, `\\boxed{${answer}}`, squeeze(answer), answer.replace(/,\s*/g, ', ')];
      if (answer.includes('\\frac')) forms.push(answer.replace(/\\frac/g, '\\dfrac'));
      if (answer.includes('\\dfrac')) forms.push(answer.replace(/\\dfrac/g, '\\frac'));
      if (/^\(.*\)$/.test(answer)) forms.push(`\\left${answer.slice(0, -1)}\\right)`);
      if (/^\\text\{[^}]*\}$/.test(answer)) forms.push(answer.slice(6, -1));
      if (/^\d+$/.test(answer)) {
        forms.push(`0${answer}`);
        if (answer.length > 3) forms.push(Number(answer).toLocaleString('en-US'));
      }
      const frac = /^(-?)\\d?frac\{(\d+)\}\{(\d+)\}$/.exec(answer);
      if (frac)
        forms.push(
          `${frac[1]}${(Number(frac[2]) / Number(frac[3])).toPrecision(8)}`,
          `${frac[1]}${frac[2]}/${frac[3]}`,
        );
      for (const f of forms)
        assert.ok(answersMatch(f, answer), `${JSON.stringify(f)} should match ${JSON.stringify(answer)}`);
      const bad = perturb(answer);
      assert.ok(!answersMatch(bad, answer), `${JSON.stringify(bad)} should not match ${JSON.stringify(answer)}`);
    }
  });
});

describe('answersMatch on AIME 2024', () => {
  const rows = readJsonl<{ answer: string }>(`${DATA}/aime24/test.jsonl`);
  it('has 30 rows, some with leading zeros', () => {
    assert.equal(rows.length, 30);
    assert.ok(rows.some((r) => r.answer.startsWith('0')));
  });
  it('every answer matches as an integer, boxed or with leading zeros, and not a neighbour', () => {
    for (const { answer } of rows) {
      const n = Number.parseInt(answer, 10);
      for (const f of [answer, String(n), `\\boxed{${n}}`, `$${n}$`, String(n).padStart(3, '0'), `${n}.0`]) {
        assert.ok(answersMatch(f, answer), `${f} = ${answer}`);
      }
      for (const f of [String(n + 1), String(n - 1), `${answer}0`])
        assert.ok(!answersMatch(f, answer), `${f} != ${answer}`);
      assert.ok(gradeResponse(`... so the answer is \\boxed{${n}}.`, answer));
    }
  });
});

describe('answersMatch on GSM8K', () => {
  it('extracts every #### answer from its solution and matches it', () => {
    for (const file of ['test', 'train']) {
      const rows = readJsonl<{ answer: string }>(`${DATA}/gsm8k/${file}.jsonl`);
      assert.ok(rows.length > 1000);
      for (const { answer } of rows) {
        // Independent parse: the text after the last "####" on its line.
        const tail = answer.slice(answer.lastIndexOf('####') + 4).trim();
        assert.match(tail, /^-?[\d,]+$/);
        const got = extractAnswer(answer);
        assert.equal(got, tail);
        const plain = tail.replace(/,/g, '');
        assert.ok(answersMatch(got, plain), `${got} = ${plain}`);
        assert.ok(answersMatch(`\\$${tail}`, plain));
        assert.ok(!answersMatch(String(BigInt(plain) + 1n), plain));
      }
    }
  });
});

describe('strict metric and gradeResponse', () => {
  it('strictMatch is the official verbatim \\boxed{ref} test', () => {
    assert.ok(strictMatch('so \\boxed{\\frac{14}{3}}.', '\\frac{14}{3}'));
    assert.ok(!strictMatch('so \\boxed{\\dfrac{14}{3}}.', '\\frac{14}{3}'));
    assert.ok(!strictMatch('\\boxed{25}', '025'));
    assert.ok(strictMatch('\\boxed{1} \\boxed{2}', '1'));
  });
  it('gradeResponse picks the metric', () => {
    const resp = 'The value is \\boxed{\\dfrac{14}{3}}.';
    assert.ok(gradeResponse(resp, '\\frac{14}{3}'));
    assert.ok(!gradeResponse(resp, '\\frac{14}{3}', { metric: 'strict' }));
    assert.ok(gradeResponse('answer 073 here', '073', { metric: 'contains' }));
    assert.throws(() => gradeResponse(resp, '1', { metric: 'nope' as never }), /unknown metric/);
  });
});

describe('symbolic check time limit', () => {
  it('cuts off a hanging check and counts it as not equal', () => {
    assert.equal(symbolicEqual('\\sqrt{8}', '2\\sqrt{2}'), true); // warm worker
    const before = symbolicTimeouts();
    let t = performance.now();
    assert.equal(symbolicEqual('1', '1', { spinMs: 5000, timeoutMs: 200 }), null);
    assert.ok(performance.now() - t < 1500, 'returned near the limit');
    // A real hang: the engine computes (2^(2^28))! exactly before comparing.
    assert.equal(symbolicEqual('\\sqrt{8}', '2\\sqrt{2}'), true); // a fresh worker
    t = performance.now();
    assert.equal(answersMatch('(2^{2^{28}})!', '0.5', { timeoutMs: 300 }), false);
    assert.ok(performance.now() - t < 2000, 'returned near the limit');
    assert.equal(symbolicTimeouts(), before + 2);
    // And the next check works again.
    assert.equal(symbolicEqual('\\pi+\\pi', '2\\pi'), true);
  });
});
