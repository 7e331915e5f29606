// Text side of motif-native: tokenizer, chat template, answer extraction and grading.

export {
  answersMatch,
  boxedMatches,
  type GradeMetric,
  type GradeOptions,
  gradeResponse,
  type MatchOptions,
  parseNumber,
  strictMatch,
} from './answers.js';
export {
  applyChatTemplate,
  type ChatMessage,
  type ChatTemplateOptions,
  type ChatTemplateTokens,
  type CompiledChatTemplate,
  compileChatTemplate,
  type HasChatTemplate,
} from './chat-template.js';
export {
  answerSection,
  type BoxedSpan,
  extractAnswer,
  extractHashAnswer,
  extractXmlAnswer,
  findBoxed,
  lastBoxed,
} from './extract.js';
export {
  type AnswerNode,
  type NormalizedAnswer,
  normalizeAnswer,
  normalizeAnswerInfo,
  parseAnswer,
} from './normalize.js';
export {
  closeSymbolic,
  DEFAULT_SYMBOLIC_TIMEOUT_MS,
  type SymbolicOptions,
  symbolicEqual,
  symbolicTimeouts,
} from './symbolic.js';
export {
  type DecodeOptions,
  type EncodeOptions,
  loadTokenizer,
  type StreamDecoder,
  Tokenizer,
  type TokenizerFiles,
} from './tokenizer.js';
