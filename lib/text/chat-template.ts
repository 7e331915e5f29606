// Chat templates: renders a model's Jinja `chat_template` (tokenizer_config.json) with
// @huggingface/jinja, with the variables HuggingFace transformers passes
// (messages, tools, add_generation_prompt, bos/eos tokens, raise_exception).

import { Template } from '@huggingface/jinja';

/** One chat turn. Extra fields (tool_calls, name, …) are passed to the template as they are. */
export interface ChatMessage {
  /** `system`, `user`, `assistant` or `tool` (any string the template knows). */
  role: string;
  /** The text of the turn (null is allowed for an assistant turn that only calls tools). */
  content: string | null;
  /** Tool calls of an assistant turn, in the OpenAI / HuggingFace shape. */
  tool_calls?: unknown[];
  [key: string]: unknown;
}

/** Options of {@link applyChatTemplate}. */
export interface ChatTemplateOptions {
  /** End with the header of an assistant turn (`<|im_start|>assistant\n`) so the model answers. Default false. */
  addGenerationPrompt?: boolean;
  /** Tool (function) schemas, as JSON-able objects; templates that support tools list them. */
  tools?: unknown[];
  /** Any further template variables (e.g. `enable_thinking`). */
  variables?: Record<string, unknown>;
}

/** Special-token strings a template may refer to (`{{ bos_token }}`). */
export interface ChatTemplateTokens {
  bos_token?: string | null;
  eos_token?: string | null;
  pad_token?: string | null;
  unk_token?: string | null;
}

/** A parsed chat template; parse once, render many times. */
export interface CompiledChatTemplate {
  /** The template source. */
  readonly source: string;
  /** Renders messages to the prompt string. */
  render(messages: readonly ChatMessage[], options?: ChatTemplateOptions & ChatTemplateTokens): string;
}

/** Anything that owns a chat template, such as a {@link Tokenizer}. */
export interface HasChatTemplate {
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
}

function checkMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages)) throw new TypeError('chat template: messages must be an array');
  messages.forEach((m, i) => {
    if (!m || typeof m !== 'object') throw new TypeError(`chat template: messages[${i}] is not an object`);
    if (typeof m.role !== 'string') throw new TypeError(`chat template: messages[${i}].role must be a string`);
    if (typeof m.content !== 'string' && m.content !== null) {
      throw new TypeError(`chat template: messages[${i}].content must be a string or null`);
    }
  });
}

/** Parses a Jinja chat template. Throws a SyntaxError-like Error naming the problem. */
export function compileChatTemplate(source: string): CompiledChatTemplate {
  if (typeof source !== 'string' || source.length === 0) throw new TypeError('chat template: empty template');
  let template: Template;
  try {
    template = new Template(source);
  } catch (err) {
    throw new Error(`chat template: cannot parse: ${(err as Error).message}`);
  }
  return {
    source,
    render(messages, options = {}) {
      checkMessages(messages);
      const vars: Record<string, unknown> = {
        ...options.variables,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: options.addGenerationPrompt ?? false,
        bos_token: options.bos_token ?? '',
        eos_token: options.eos_token ?? '',
        pad_token: options.pad_token ?? '',
        unk_token: options.unk_token ?? '',
      };
      if (options.tools !== undefined && options.tools.length > 0) vars.tools = options.tools;
      try {
        return template.render(vars);
      } catch (err) {
        throw new Error(`chat template: cannot render: ${(err as Error).message}`);
      }
    },
  };
}

const cache = new Map<string, CompiledChatTemplate>();

/**
 * Renders chat messages to a prompt string.
 *
 * `template` is a tokenizer (anything with `applyChatTemplate`, which then uses its own template
 * and special tokens) or a Jinja template source string (parsed once and cached).
 *
 * @example
 * applyChatTemplate(tokenizer, [{ role: 'user', content: 'What is 2+2?' }], { addGenerationPrompt: true })
 */
export function applyChatTemplate(
  template: string | HasChatTemplate,
  messages: readonly ChatMessage[],
  options: ChatTemplateOptions & ChatTemplateTokens = {},
): string {
  if (typeof template !== 'string') return template.applyChatTemplate(messages, options);
  let compiled = cache.get(template);
  if (!compiled) {
    compiled = compileChatTemplate(template);
    if (cache.size >= 16) cache.delete(cache.keys().next().value as string);
    cache.set(template, compiled);
  }
  return compiled.render(messages, options);
}
