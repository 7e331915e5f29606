/**
 * tokenizer.ts — the demo model's tokenizer, made by code: a byte-level vocabulary (one token per
 * byte, GPT-2's printable stand-ins, no merges — so any text encodes, one token per character of
 * the task's ASCII), plus the chat special tokens and the protocol's tags and `\boxed{` as single
 * added tokens to keep sequences short. Written as HuggingFace tokenizer.json + tokenizer_config.json
 * (with a ChatML chat template, as Qwen2 uses), which lib/text/tokenizer.ts loads like any model's.
 */

/** Special tokens (skipped when decoding with skipSpecialTokens). */
export const DEMO_SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;

/** Plain added tokens: kept in decoded text, matched before the byte-level split. */
export const DEMO_TEXT_TOKENS = ['<reasoning>', '</reasoning>', '<answer>', '</answer>', '\\boxed{'] as const;

/** ChatML: `<|im_start|>role\ncontent<|im_end|>\n` per message, then `<|im_start|>assistant\n`. */
export const DEMO_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** GPT-2's bytes_to_unicode: the printable character standing for each byte. */
export function byteToUnicode(): string[] {
  const out: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out.push(String.fromCodePoint(printable ? b : 256 + extra++));
  }
  return out;
}

/** Number of ids: 256 bytes plus the added tokens. */
export const DEMO_VOCAB_SIZE = 256 + DEMO_SPECIAL_TOKENS.length + DEMO_TEXT_TOKENS.length;

/** The tokenizer.json object (ids 0–255: bytes; then the special tokens; then the text tokens). */
export function demoTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  byteToUnicode().forEach((ch, b) => {
    vocab[ch] = b;
  });
  const added = [...DEMO_SPECIAL_TOKENS, ...DEMO_TEXT_TOKENS].map((content, i) => ({
    id: 256 + i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: (DEMO_SPECIAL_TOKENS as readonly string[]).includes(content),
  }));
  for (const t of added) vocab[t.content] = t.id;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

/** The tokenizer_config.json object: special tokens and the chat template. */
export function demoTokenizerConfig(): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  [...DEMO_SPECIAL_TOKENS, ...DEMO_TEXT_TOKENS].forEach((content, i) => {
    decoder[String(256 + i)] = {
      content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: (DEMO_SPECIAL_TOKENS as readonly string[]).includes(content),
    };
  });
  return {
    added_tokens_decoder: decoder,
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    unk_token: null,
    model_max_length: 1024,
    clean_up_tokenization_spaces: false,
    tokenizer_class: 'PreTrainedTokenizerFast',
    chat_template: DEMO_CHAT_TEMPLATE,
  };
}
