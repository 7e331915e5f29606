// Tokenizer: loads a HuggingFace model folder's tokenizer.json + tokenizer_config.json
// (byte-level BPE as Qwen2.5 and Llama 3 use) through @huggingface/tokenizers, and adds
// what the trainer needs on top: Int32Array ids, special-token ids, an incremental
// decoder that never emits half a UTF-8 character, and the model's chat template.

import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';

import {
  type ChatMessage,
  type ChatTemplateOptions,
  type CompiledChatTemplate,
  compileChatTemplate,
} from './chat-template.js';

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /**
   * Add the special tokens the tokenizer's post-processor adds (a BOS for Llama 3; nothing
   * for Qwen2.5). Default true, as in HuggingFace. Use false for text that already carries
   * them, such as a rendered chat template (or call {@link Tokenizer.encodeChat}).
   */
  addSpecialTokens?: boolean;
}

/** Options of {@link Tokenizer.decode} and {@link Tokenizer.createStreamDecoder}. */
export interface DecodeOptions {
  /** Leave out special tokens (`<|im_end|>`, `<|endoftext|>`, …). Default false. */
  skipSpecialTokens?: boolean;
}

/**
 * Incremental detokenizer: feed it token ids as they are sampled, get text back as soon as
 * it forms whole characters. A code point split over several byte-level tokens is held
 * back until its last byte arrives, so no chunk ever ends in half a UTF-8 character.
 * The concatenation of every `push` and the final `flush` equals `decode(allIds)`.
 */
export interface StreamDecoder {
  /** Adds one id or several ids; returns the text completed by them (may be ""). */
  push(ids: number | ArrayLike<number>): string;
  /** Ends the stream: returns what is still held (an incomplete character becomes U+FFFD). */
  flush(): string;
}

/** Where a tokenizer was loaded from and what it holds. */
export interface TokenizerFiles {
  /** Parsed tokenizer.json. */
  tokenizerJson: Record<string, unknown>;
  /** Parsed tokenizer_config.json ({} when the folder has none). */
  tokenizerConfig: Record<string, unknown>;
  /** Chat template (from tokenizer_config.json or chat_template.jinja), or null. */
  chatTemplate?: string | null;
  /** Used in error messages. */
  source?: string;
}

// ---------------------------------------------------------------------------------------
// Byte-level helpers (GPT-2's bytes <-> printable characters table)

let charToByte: Map<string, number> | null = null;

/** The inverse of GPT-2's bytes_to_unicode table: printable stand-in character -> byte. */
function byteLevelTable(): Map<string, number> {
  if (charToByte) return charToByte;
  const table = new Map<string, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const cp = printable ? b : 256 + extra++;
    table.set(String.fromCodePoint(cp), b);
  }
  charToByte = table;
  return table;
}

const utf8 = new TextEncoder();

/** The raw bytes one byte-level token stands for (added tokens that are not byte-mapped: their UTF-8). */
function tokenBytes(token: string): Uint8Array {
  const table = byteLevelTable();
  const out = new Uint8Array(token.length);
  let n = 0;
  for (const ch of token) {
    const b = table.get(ch);
    if (b === undefined) return utf8.encode(token);
    out[n++] = b;
  }
  return out.subarray(0, n);
}

function tokenContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

// ---------------------------------------------------------------------------------------

/**
 * A loaded tokenizer. Build it with {@link loadTokenizer} (a model folder) or
 * `new Tokenizer(files)` (already parsed JSON).
 */
export class Tokenizer {
  /** Number of ids (vocabulary plus added tokens): every valid id is below it. */
  readonly vocabSize: number;
  /** End-of-sequence id from tokenizer_config.json's `eos_token` (Qwen2.5 instruct: `<|im_end|>`), or null. */
  readonly eosId: number | null;
  /** Padding id (`pad_token`; Qwen2.5: `<|endoftext|>`), or null. */
  readonly padId: number | null;
  /** Beginning-of-sequence id (`bos_token`; null for Qwen2.5). */
  readonly bosId: number | null;
  /** Id of `<|im_start|>`, or null when the vocabulary has none. */
  readonly imStartId: number | null;
  /** Id of `<|im_end|>`, or null when the vocabulary has none. */
  readonly imEndId: number | null;
  /**
   * Ids that end a generated turn: eos, `<|im_end|>`, `<|endoftext|>`, `<|eot_id|>`,
   * `<|end_of_text|>` — those of them the vocabulary has, without repeats.
   */
  readonly stopIds: readonly number[];
  /** Ids of all special added tokens. */
  readonly specialIds: ReadonlySet<number>;
  /** The chat template source, or null when the model has none. */
  readonly chatTemplate: string | null;
  /** Where it was loaded from (a folder), for messages. */
  readonly source: string;

  /** @internal */
  readonly _hf: HfTokenizer;
  /** @internal */
  private readonly _byteLevel: boolean;
  /** @internal */
  private readonly _idToToken: (string | undefined)[];
  /** @internal */
  private _bytesCache: (Uint8Array | undefined)[] = [];
  /** @internal */
  private _template: CompiledChatTemplate | null = null;
  /** @internal */
  private readonly _templateVars: Record<string, string | null>;

  /** Builds a tokenizer from parsed files; prefer {@link loadTokenizer}. */
  constructor(files: TokenizerFiles) {
    const { tokenizerJson, tokenizerConfig } = files;
    this.source = files.source ?? '<memory>';
    const model = tokenizerJson.model as { type?: string; vocab?: unknown } | undefined;
    if (!model || typeof model !== 'object' || !model.vocab) {
      throw new Error(`${this.source}: tokenizer.json has no model.vocab`);
    }
    try {
      this._hf = new HfTokenizer(tokenizerJson, tokenizerConfig);
    } catch (err) {
      throw new Error(`${this.source}: cannot build the tokenizer: ${(err as Error).message}`);
    }

    // id -> token string, vocabulary first, then added tokens.
    const idToToken: (string | undefined)[] = [];
    const vocab = model.vocab;
    if (Array.isArray(vocab)) {
      // Unigram: [[piece, score], ...]
      vocab.forEach((entry, i) => {
        idToToken[i] = Array.isArray(entry) ? String(entry[0]) : String(entry);
      });
    } else {
      for (const [tok, id] of Object.entries(vocab as Record<string, number>)) idToToken[id] = tok;
    }
    const special = new Set<number>();
    const added = Array.isArray(tokenizerJson.added_tokens) ? (tokenizerJson.added_tokens as unknown[]) : [];
    for (const t of added) {
      const { id, content, special: isSpecial } = t as { id: number; content: string; special?: boolean };
      idToToken[id] = content;
      if (isSpecial) special.add(id);
    }
    this._idToToken = idToToken;
    this.vocabSize = idToToken.length;
    this.specialIds = special;

    const decoder = tokenizerJson.decoder as { type?: string } | null | undefined;
    this._byteLevel = decoder?.type === 'ByteLevel';

    const idOf = (tok: string | null): number | null => {
      if (tok === null) return null;
      const id = this._hf.token_to_id(tok);
      return id === undefined ? null : id;
    };
    const eosTok = tokenContent(tokenizerConfig.eos_token);
    const padTok = tokenContent(tokenizerConfig.pad_token);
    const bosTok = tokenContent(tokenizerConfig.bos_token);
    this.eosId = idOf(eosTok);
    this.padId = idOf(padTok);
    this.bosId = idOf(bosTok);
    this.imStartId = idOf('<|im_start|>');
    this.imEndId = idOf('<|im_end|>');
    const stops: number[] = [];
    for (const id of [this.eosId, this.imEndId, idOf('<|endoftext|>'), idOf('<|eot_id|>'), idOf('<|end_of_text|>')]) {
      if (id !== null && !stops.includes(id)) stops.push(id);
    }
    this.stopIds = stops;
    this.chatTemplate = files.chatTemplate ?? pickChatTemplate(tokenizerConfig.chat_template);
    this._templateVars = {
      bos_token: bosTok,
      eos_token: eosTok,
      pad_token: padTok,
      unk_token: tokenContent(tokenizerConfig.unk_token),
    };
  }

  /** Encodes text to token ids. */
  encode(text: string, options: EncodeOptions = {}): Int32Array {
    if (typeof text !== 'string') throw new TypeError(`encode: expected a string, got ${typeof text}`);
    const { ids } = this._hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true });
    return Int32Array.from(ids);
  }

  /**
   * Decodes token ids to text (invalid UTF-8 byte runs become U+FFFD, as in HuggingFace).
   * Ids with no token (past the vocabulary, e.g. a model's padding rows) are left out, as
   * HuggingFace does; negative or non-integer ids throw a RangeError.
   */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const list = this._checkIds(ids);
    if (list.length === 0) return '';
    return this._hf.decode(list, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  /** The token string of an id (byte-level form, e.g. `Ġworld`), or undefined. */
  idToToken(id: number): string | undefined {
    return this._idToToken[id];
  }

  /** The id of a token string (byte-level form, or an added token like `<|im_end|>`), or undefined. */
  tokenToId(token: string): number | undefined {
    return this._hf.token_to_id(token);
  }

  /** Starts an incremental decoder (see {@link StreamDecoder}). */
  createStreamDecoder(options: DecodeOptions = {}): StreamDecoder {
    const skip = options.skipSpecialTokens ?? false;
    if (this._byteLevel) return this._byteStream(skip);
    return this._offsetStream(skip);
  }

  /**
   * Renders the model's chat template (tokenizer_config.json `chat_template`) to a prompt string.
   * Throws when the model has no chat template.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (!this._template) {
      if (this.chatTemplate === null) throw new Error(`${this.source}: the tokenizer has no chat_template`);
      this._template = compileChatTemplate(this.chatTemplate);
    }
    return this._template.render(messages, { ...this._templateVars, ...options });
  }

  /** Renders the chat template and encodes the result without adding special tokens twice. */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): Int32Array {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
  }

  /** @internal */
  private _checkIds(ids: ArrayLike<number>): number[] {
    const out: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      if (!Number.isInteger(id) || id < 0) {
        throw new RangeError(`decode: token id ${id} at index ${i} is not a non-negative integer`);
      }
      // Ids past the vocabulary (a model's padded embedding rows) decode to nothing, as in HuggingFace.
      if (this._idToToken[id] !== undefined) out.push(id);
    }
    return out;
  }

  /** @internal Exact byte-level streaming: token -> bytes -> streaming UTF-8 decoder. */
  private _byteStream(skip: boolean): StreamDecoder {
    const td = new TextDecoder('utf-8', { ignoreBOM: true });
    const bytesOf = (id: number): Uint8Array => {
      let b = this._bytesCache[id];
      if (!b) {
        b = tokenBytes(this._idToToken[id] as string);
        this._bytesCache[id] = b;
      }
      return b;
    };
    return {
      push: (ids) => {
        const list = this._checkIds(typeof ids === 'number' ? [ids] : ids);
        const parts: Uint8Array[] = [];
        let total = 0;
        for (const id of list) {
          if (skip && this.specialIds.has(id)) continue;
          const b = bytesOf(id);
          parts.push(b);
          total += b.length;
        }
        const buf = new Uint8Array(total);
        let off = 0;
        for (const p of parts) {
          buf.set(p, off);
          off += p.length;
        }
        return td.decode(buf, { stream: true });
      },
      flush: () => td.decode(),
    };
  }

  /**
   * @internal Generic streaming for non-byte-level decoders: decode a window and emit only
   * what is past the previous text and does not end in U+FFFD (an unfinished character).
   */
  private _offsetStream(skip: boolean): StreamDecoder {
    let ids: number[] = [];
    let emitted = '';
    const dec = (list: number[]) =>
      this._hf.decode(list, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
    return {
      push: (more) => {
        ids.push(...this._checkIds(typeof more === 'number' ? [more] : more));
        const text = dec(ids);
        if (text.endsWith('\uFFFD') || !text.startsWith(emitted)) return '';
        const out = text.slice(emitted.length);
        emitted = text;
        // Keep the window short: restart it once the text is long and settled.
        if (ids.length > 64) {
          ids = ids.slice(-4);
          emitted = dec(ids);
        }
        return out;
      },
      flush: () => {
        const text = dec(ids);
        const out = text.startsWith(emitted) ? text.slice(emitted.length) : '';
        ids = [];
        emitted = '';
        return out;
      },
    };
  }
}

/** tokenizer_config.json's `chat_template`: a string, or a list of named templates. */
function pickChatTemplate(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value as { name?: string; template?: string }[];
    const def = named.find((t) => t.name === 'default') ?? named[0];
    return typeof def?.template === 'string' ? def.template : null;
  }
  return null;
}

async function readJson(file: string, required: boolean): Promise<Record<string, unknown> | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`${file}: cannot read: ${(err as Error).message}`);
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${file}: invalid JSON: ${(err as Error).message}`);
  }
}

/**
 * Loads the tokenizer of a HuggingFace model folder: `tokenizer.json` (required),
 * `tokenizer_config.json` (special tokens, chat template; optional) and, when the config
 * has no template, `chat_template.jinja`. `dir` may also name the tokenizer.json file itself.
 */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  let folder = dir;
  try {
    if ((await stat(dir)).isFile()) folder = path.dirname(dir);
  } catch (err) {
    throw new Error(`${dir}: cannot open the tokenizer folder: ${(err as Error).message}`);
  }
  const tokenizerJson = await readJson(path.join(folder, 'tokenizer.json'), true);
  const tokenizerConfig = (await readJson(path.join(folder, 'tokenizer_config.json'), false)) ?? {};
  let chatTemplate = pickChatTemplate(tokenizerConfig.chat_template);
  if (chatTemplate === null) {
    try {
      chatTemplate = await readFile(path.join(folder, 'chat_template.jinja'), 'utf8');
    } catch {
      chatTemplate = null;
    }
  }
  return new Tokenizer({
    tokenizerJson: tokenizerJson as Record<string, unknown>,
    tokenizerConfig,
    chatTemplate,
    source: folder,
  });
}
