// Data side of motif-native: dataset loaders (GSM8K, MATH-500, AIME, generic; JSONL and
// Parquet), JSONL streaming, seeded shuffling and train/eval splits.

export {
  type DatasetKind,
  type DatasetOptions,
  type DatasetRow,
  type DatasetStats,
  guessKind,
  type LoadedDataset,
  loadDataset,
  parseGsm8kAnswer,
  streamDataset,
} from './datasets.js';
export { DataFileError, type JsonlEntry, readJsonl } from './jsonl.js';
export { createRng, type Rng, randomInt, type SplitOptions, shuffle, splitTrainEval } from './random.js';
