/**
 * index.ts — the trainer's public API: train / evaluate, PEFT adapter files, the TrainableModel
 * contract, supervised fine-tuning (sft), and the pieces a custom loop may reuse (advantages,
 * schedule, run folder, rollouts).
 */

export { ADVANTAGE_EPS, type Advantages, groupAdvantages } from './advantages.js';
export { DEFAULT_TRAIN_CONFIG, resolveTrainConfig, type TrainConfig, type TrainMethod } from './config.js';
export { type EvaluatedProblem, type EvaluateOptions, type EvaluateResult, evaluate } from './evaluate.js';
export {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  adapterConfigJson,
  loadAdapter,
  loraTensorName,
  type ReadAdapter,
  readAdapter,
  type SaveAdapterOptions,
  saveAdapter,
} from './peft.js';
export { ProgressBar, type ProgressOptions, type ProgressUpdate } from './progress.js';
export { type PromptStyle, type RolloutModel, type RolloutResult, type RolloutSettings, rollout } from './rollout.js';
export { type CheckpointInfo, gitState, latestCheckpoint, RunDir, type TrainerState } from './run-dir.js';
export { type CosineScheduleOptions, cosineWithWarmup, type LrSchedule } from './schedule.js';
export {
  endOfTurnId,
  formatSftExample,
  readSftDataset,
  type SftConversation,
  type SftExample,
  type SftOptions,
  type SftPair,
  type SftResult,
  type SftStepMetrics,
  type SftTokenizer,
  type SftTokens,
  sft,
  sftBatch,
  sftExampleFromRow,
} from './sft.js';
export { type ProgressSink, type TrainOptions, type TrainResult, train } from './trainer.js';
export {
  type GrpoBatch,
  isTrainableModel,
  LORA_TARGETS,
  type LoraConfig,
  type LoraTarget,
  type LossResult,
  type LossType,
  type OptimizerOptions,
  type OptimizerState,
  type ScaleRewards,
  type TrainableModel,
  type TrainerTokenizer,
} from './types.js';
