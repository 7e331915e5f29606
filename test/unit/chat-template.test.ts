// Chat template tests: Qwen2.5's tokenizer_config.json template rendered with
// @huggingface/jinja must give the known Qwen2.5 prompt strings (SOURCES.md), byte for byte,
// with and without a system message, with tools, tool calls and tool responses.

import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import { applyChatTemplate, compileChatTemplate, loadTokenizer, type Tokenizer } from '../../lib/text/index.js';

const DIR = '../shared/data/tokenizer/qwen2.5';
const DEFAULT_SYSTEM = 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.';

describe('chat template (Qwen2.5)', () => {
  let tok: Tokenizer;
  before(async () => {
    tok = await loadTokenizer(DIR);
  });

  it('renders one user turn exactly as SOURCES.md gives it', () => {
    const text = tok.applyChatTemplate([{ role: 'user', content: 'What is 2+2?' }], { addGenerationPrompt: true });
    assert.equal(
      text,
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('renders an explicit system + user prompt, with and without the generation prompt', () => {
    const messages = [
      { role: 'system', content: DEFAULT_SYSTEM },
      { role: 'user', content: 'What is 2+2?' },
    ];
    const withGen = tok.applyChatTemplate(messages, { addGenerationPrompt: true });
    assert.equal(
      withGen,
      `<|im_start|>system\n${DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n`,
    );
    const without = tok.applyChatTemplate(messages);
    assert.equal(without, withGen.slice(0, -'<|im_start|>assistant\n'.length));
    // The same through the free function with the template source.
    assert.equal(applyChatTemplate(tok.chatTemplate as string, messages, { addGenerationPrompt: true }), withGen);
    assert.equal(applyChatTemplate(tok, messages, { addGenerationPrompt: true }), withGen);
  });

  it('keeps the text of messages untouched (newlines, quotes, braces, unicode)', () => {
    const content = 'Line 1\n\n  "quoted" {{ not jinja }} {% raw %} \\boxed{42} 😊\n';
    const text = tok.applyChatTemplate([
      { role: 'system', content: 'S' },
      { role: 'user', content },
    ]);
    assert.equal(text, `<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n${content}<|im_end|>\n`);
  });

  it('renders a multi-turn conversation', () => {
    const text = tok.applyChatTemplate(
      [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: 'Bye' },
      ],
      { addGenerationPrompt: true },
    );
    assert.equal(
      text,
      `<|im_start|>system\n${DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n`,
    );
  });

  it('renders tools, tool calls and tool responses', () => {
    const tool = {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'Weather of a city',
        parameters: { type: 'object', properties: { city: { type: 'string' } } },
      },
    };
    const text = tok.applyChatTemplate(
      [
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } }],
        },
        { role: 'tool', content: '22C' },
      ],
      { addGenerationPrompt: true, tools: [tool] },
    );
    const toolJson =
      '{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}';
    assert.equal(
      text,
      `<|im_start|>system\n${DEFAULT_SYSTEM}\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n` +
        `You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n${toolJson}\n</tools>\n\n` +
        'For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n' +
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\nWeather in Paris?<|im_end|>\n' +
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\n<tool_response>\n22C\n</tool_response><|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('encodes a chat to the expected ids', () => {
    const ids = tok.encodeChat([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
    const text = tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
    assert.deepEqual([...ids], [...tok.encode(text)]);
    // <|im_start|> "system" "\n" … ; ends with <|im_start|> "assistant" "\n"
    assert.equal(ids[0], 151644);
    assert.equal(tok.decode(ids.subarray(1, 2)), 'system');
    assert.equal(ids[2], 198);
    assert.equal(ids[ids.length - 3], 151644);
    assert.equal(tok.decode(ids.subarray(ids.length - 2)), 'assistant\n');
    // "<|im_start|>user\nhi<|im_end|>" as published: 151644, 872, 198, 6023, 151645
    const user = [151644, 872, 198, 6023, 151645];
    const at = [...ids].findIndex((_, i) => user.every((u, k) => ids[i + k] === u));
    assert.ok(at > 0);
  });

  it('rejects malformed messages and templates with clear errors', () => {
    assert.throws(() => tok.applyChatTemplate([{ role: 'user' } as never]), /messages\[0\]\.content/);
    assert.throws(() => tok.applyChatTemplate('hi' as never), /must be an array/);
    assert.throws(() => compileChatTemplate('{% if %}'), /chat template: cannot parse/);
    const t = compileChatTemplate("{{ raise_exception('no system allowed') }}");
    assert.throws(() => t.render([{ role: 'user', content: 'x' }]), /no system allowed/);
  });
});
