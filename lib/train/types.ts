/**
 * types.ts — the contract between the TypeScript trainer (lib/train/) and a model it can train.
 *
 * `TrainableModel` is what the trainer, the PEFT files and the evaluator program against: the rollout
 * engine (`generate`, which samples from the live adapter), the LoRA adapter (create, read, write,
 * enable), the GRPO loss with LoRA gradients, and AdamW. `Model` (lib/model/Model.ts) implements it
 * once the native training API lands; tests use a small fake (test/helpers/fake-trainable.ts).
 *
 * Tensor names are PEFT's (`base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight`):
 * lora_A is [r, in], lora_B is [out, r], row-major Float32Array.
 */
import type { GenerateRequest, GenerateResult } from '../model/generate.js';
import type { GenerateOptions, ModelConfig } from '../model/Model.js';
import type { Tokenizer } from '../text/tokenizer.js';

/** The projections a LoRA adapter can wrap, in PEFT's usual order. */
export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;

/** One projection a LoRA adapter can wrap. */
export type LoraTarget = (typeof LORA_TARGETS)[number];

/** A LoRA adapter's shape and initialization. */
export interface LoraConfig {
  /** Rank r (> 0). */
  rank: number;
  /** lora_alpha: the update is scaled by alpha / r (alpha / sqrt(r) with rsLoRA). */
  alpha: number;
  /** Projections wrapped, a subset of {@link LORA_TARGETS}; every layer gets them. */
  targets: string[];
  /** rsLoRA scaling (alpha / sqrt(r)). */
  rslora: boolean;
  /** Seed of PEFT's initialization (A Kaiming-uniform, B zeros). */
  seed: number;
}

/** GRPO loss variants, as TRL names them. */
/**
 * The loss of {@link TrainableModel.lossAndGradients}: TRL's GRPO aggregations, or 'sft' — the mean
 * negative log-likelihood of the completion tokens (supervised fine-tuning; rewards are ignored).
 */
export type LossType = 'grpo' | 'bnpo' | 'dr_grpo' | 'sft';

/** How group-relative advantages are scaled: by the group's std, the batch's std, or not at all. */
export type ScaleRewards = 'group' | 'batch' | 'none';

/**
 * One batch for {@link TrainableModel.lossAndGradients}: `completionIds.length` completions in groups
 * of `groupSize` consecutive completions; `promptIds` holds one prompt per group or one per completion.
 * Every listed completion token counts in the loss.
 */
export interface GrpoBatch {
  promptIds: number[][];
  completionIds: number[][];
  /** One reward per completion. */
  rewards: number[];
  groupSize: number;
  lossType: LossType;
  /** Lower clipping bound of the importance ratio (1 - epsilon). */
  epsilon: number;
  /** Upper clipping bound (1 + epsilonHigh); default epsilon. */
  epsilonHigh?: number;
  /** KL coefficient against the base model (adapter disabled); 0 skips the reference pass. */
  beta: number;
  /** The sampling temperature: logits are divided by it before the log-softmax. */
  temperature: number;
  /** dr_grpo's normalizing constant (tokens per completion); default the longest completion. */
  maxCompletionLength?: number;
  scaleRewards?: ScaleRewards;
  /** Log-probs of the completion tokens under the sampling policy (generate's logprobs). */
  oldLogps?: number[][];
  /** Reference (base-model) log-probs, when already known. */
  refLogps?: number[][];
  /** Per-completion advantages; when given they are used as they are (rewards are then only reported). */
  advantages?: number[];
}

/** What {@link TrainableModel.lossAndGradients} returns. */
export interface LossResult {
  /** The batch's loss (unscaled). */
  loss: number;
  /** The LoRA gradients of `scale x loss`, under PEFT tensor names. */
  grads: Map<string, Float32Array>;
  stats: {
    /** Completion tokens in the loss. */
    tokens: number;
    /** Fraction of those tokens whose ratio was clipped. */
    clipFraction: number;
    /** Mean per-token KL to the base model (0 when beta is 0). */
    kl: number;
  };
}

/** AdamW hyper-parameters of one {@link TrainableModel.optimizerStep}. */
export interface OptimizerOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clipping threshold (0 or Infinity: no clipping). */
  maxGradNorm: number;
}

/** AdamW's state: the number of updates made and its moment tensors (names chosen by the model). */
export interface OptimizerState {
  step: number;
  tensors: Map<string, Float32Array>;
}

/** The parts of a tokenizer the trainer uses; `Tokenizer` (lib/text) has them all. */
export type TrainerTokenizer = Pick<Tokenizer, 'encodeChat' | 'decode' | 'stopIds'>;

/**
 * A model the trainer can train: rollouts, a LoRA adapter, the GRPO loss with LoRA gradients and
 * AdamW. `Model` implements it once the native training API is in; a fake one drives the tests.
 */
export interface TrainableModel {
  readonly config: ModelConfig;
  /** Needed for training and evaluation (prompts are chat-templated and tokenized in TypeScript). */
  readonly tokenizer?: TrainerTokenizer;
  /** Batched rollouts; they read the live adapter (unless disabled with setAdapterEnabled(false)). */
  generate(requests: readonly GenerateRequest[], options?: GenerateOptions): Promise<GenerateResult[]>;
  /** Creates (or replaces) the adapter with PEFT's initialization: A Kaiming-uniform, B zeros. */
  createLora(config: LoraConfig): Promise<void>;
  /** The current adapter's config, or undefined when the model has none. */
  readonly lora: LoraConfig | undefined;
  /** A copy of every adapter tensor under its PEFT name (lora_A [r, in], lora_B [out, r]). */
  getAdapterTensors(): Promise<Map<string, Float32Array>>;
  /** Overwrites the adapter's tensors (every one, same names and sizes as getAdapterTensors). */
  setAdapterTensors(tensors: Map<string, Float32Array>): Promise<void>;
  /** Turns the adapter off (the base model: continuation policy 'base', KL reference) or back on. */
  setAdapterEnabled(on: boolean): void;
  /**
   * The GRPO loss of a batch and the LoRA gradients of `scale x loss`. With `accumulate`, the
   * gradients are also added to the model's accumulators, which optimizerStep consumes.
   */
  lossAndGradients(
    batch: GrpoBatch,
    opts?: { accumulate?: boolean; scale?: number; gradients?: boolean },
  ): Promise<LossResult>;
  /** AdamW on the accumulated gradients, then zeroes them; skipped (no change) when a gradient is NaN/Inf. */
  optimizerStep(opts: OptimizerOptions): Promise<{ gradNorm: number; skipped: boolean }>;
  getOptimizerState(): Promise<OptimizerState>;
  setOptimizerState(state: OptimizerState): Promise<void>;
  /** Full-parameter training (sft --full): every weight trained instead of an adapter. Optional. */
  enableFullTraining?(): Promise<void>;
  /** After enableFullTraining: writes the weights as a HuggingFace folder. */
  saveModel?(dir: string, options?: { dtype?: 'f32' | 'f16' | 'bf16'; overwrite?: boolean }): Promise<void>;
}

/** True when `model` has every method of {@link TrainableModel} (a build without the training API has not). */
export function isTrainableModel(model: unknown): model is TrainableModel {
  if (model === null || typeof model !== 'object') return false;
  const m = model as Record<string, unknown>;
  return [
    'generate',
    'createLora',
    'getAdapterTensors',
    'setAdapterTensors',
    'setAdapterEnabled',
    'lossAndGradients',
    'optimizerStep',
    'getOptimizerState',
    'setOptimizerState',
  ].every((k) => typeof m[k] === 'function');
}
