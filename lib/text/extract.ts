// Answer extraction: pulls the final answer out of a model response — the last
// \boxed{…}/\fbox{…} (nested braces), else the <answer> section, else GSM8K's `#### N`,
// else "the answer is …", else the last number. Also the official MOTIF helpers
// (`extract_xml_answer`: the text of the last <answer> section, closing tag optional).

/** One `\boxed{…}` / `\fbox{…}` found in a text. */
export interface BoxedSpan {
  /** The content between the braces (or the token after `\boxed ` in the brace-less form). */
  content: string;
  /** Index of the backslash of `\boxed` in the text. */
  start: number;
  /** Index just past the closing brace. */
  end: number;
}

const BOX_RE = /\\(?:boxed|fbox)(?![a-zA-Z])/g;

/** Index just past the brace group opening at `open` (text[open] === '{'), or -1 if unbalanced. */
export function matchBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') {
      i++; // skip escaped char: \{ \} do not count
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/**
 * Every `\boxed{…}` and `\fbox{…}` in the text, in order, with nested braces handled
 * (`\boxed{\frac{1}{2}}` → `\frac{1}{2}`). The brace-less form `\boxed 5` yields `5`.
 * An unclosed box (a truncated response) is left out.
 */
export function findBoxed(text: string): BoxedSpan[] {
  const out: BoxedSpan[] = [];
  BOX_RE.lastIndex = 0;
  for (let m = BOX_RE.exec(text); m !== null; m = BOX_RE.exec(text)) {
    let i = m.index + m[0].length;
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
    if (text[i] === '{') {
      const end = matchBrace(text, i);
      if (end < 0) continue;
      out.push({ content: text.slice(i + 1, end - 1), start: m.index, end });
      BOX_RE.lastIndex = end;
    } else if (i > m.index + m[0].length) {
      const tok = /^[^\s$]+/.exec(text.slice(i));
      if (tok) out.push({ content: tok[0], start: m.index, end: i + tok[0].length });
    }
  }
  return out;
}

/** The content of the last `\boxed{…}` / `\fbox{…}`, or null. */
export function lastBoxed(text: string): string | null {
  const all = findBoxed(text);
  return all.length ? (all[all.length - 1] as BoxedSpan).content : null;
}

/**
 * The official MOTIF / GRPO-demo `extract_xml_answer`: the text after the last `<answer>`
 * up to the next `</answer>` (or the end when the closing tag is missing), trimmed. A text
 * with no `<answer>` tag is returned whole (trimmed), exactly as the official code does.
 */
export function extractXmlAnswer(text: string): string {
  const open = text.lastIndexOf('<answer>');
  const after = open < 0 ? text : text.slice(open + '<answer>'.length);
  const close = after.indexOf('</answer>');
  return (close < 0 ? after : after.slice(0, close)).trim();
}

/** The content of the last `<answer>` section (closing tag optional), or null when there is no `<answer>` tag. */
export function answerSection(text: string): string | null {
  if (!text.includes('<answer>')) return null;
  return extractXmlAnswer(text);
}

function cleanTail(s: string): string {
  let t = s.trim();
  t = t.replace(/^\*\*|\*\*$/g, '').trim();
  // Surrounding math delimiters: $…$, \(…\), \[…\]
  const m = /^\$+([\s\S]*?)\$+\.?$/.exec(t) ?? /^\\\(([\s\S]*?)\\\)\.?$/.exec(t) ?? /^\\\[([\s\S]*?)\\\]\.?$/.exec(t);
  if (m) t = (m[1] as string).trim();
  return t.replace(/[.。]+$/, '').trim();
}

const HASH_RE = /####\s*([^\n]*)/g;
const ANSWER_IS_RE = /(?:final answer|the answer)\s*(?:is|:|=)\s*:?\s*([^\n]*)/gi;
const NUMBER_RE = /-?\d+(?:,\d{3})*(?:\.\d+)?|-?\.\d+/g;

function lastMatch(re: RegExp, text: string): RegExpExecArray | null {
  re.lastIndex = 0;
  let last: RegExpExecArray | null = null;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) last = m;
  return last;
}

/** GSM8K's `#### N` answer (the last one), or null. */
export function extractHashAnswer(text: string): string | null {
  const m = lastMatch(HASH_RE, text);
  if (!m) return null;
  const v = cleanTail(m[1] as string);
  return v.length ? v : null;
}

function fromPlainText(text: string): string | null {
  const hash = extractHashAnswer(text);
  if (hash !== null) return hash;
  const is = lastMatch(ANSWER_IS_RE, text);
  if (is) {
    let v = (is[1] as string).trim();
    // Keep a leading math span ("$\frac12$, since …" → "\frac12").
    const math = /^\$([^$]+)\$/.exec(v);
    if (math) v = math[1] as string;
    else v = v.replace(/[,;]\s+(?:since|because|as|which|so)\b.*$/i, '');
    v = cleanTail(v);
    if (v.length) return v;
  }
  const num = lastMatch(NUMBER_RE, text);
  return num ? num[0] : null;
}

/**
 * The final answer of a response, or null when none can be found. In order of preference:
 * the last `\boxed{…}` / `\fbox{…}`; the last `<answer>` section (itself searched for
 * `#### N` / "the answer is …" when it is a sentence); `#### N`; "the answer is …" /
 * "final answer: …"; the last number.
 */
export function extractAnswer(text: string): string | null {
  if (typeof text !== 'string' || text.length === 0) return null;
  const boxed = lastBoxed(text);
  if (boxed?.trim().length) return (boxed as string).trim();
  const section = answerSection(text);
  if (section?.length) {
    // A sentence ("The answer is 18", "She pays 18 dollars in total") is searched further.
    if (/####|answer\s*(?:is|:)/i.test(section) || /[a-z]{2,}\s+[a-z]{2,}\s+[a-z]{2,}/i.test(section)) {
      const inner = fromPlainText(section);
      if (inner !== null) return inner;
    }
    return cleanTail(section);
  }
  return fromPlainText(text);
}
