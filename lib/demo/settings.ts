/**
 * settings.ts — the built-in demo's fixed choices in one place: the task's size (chain length,
 * rounds, steps a round), the per-round token budget that follows from it, and the training and
 * evaluation settings of `motif-native train` with no --model (tuned to finish in minutes on a
 * 2-core CPU). scripts/make-demo-model.ts makes the shipped model for this task.
 */
import type { TrainConfig } from '../train/config.js';
import { type DemoTask, resolveDemoTask } from './task.js';

/**
 * Tokens of the longest round response with the demo tokenizer, stop token included: the tags and
 * newlines (10), the restated state (2), four per step, `\boxed{` + digit + `}` (3), `<|im_end|>` (1).
 */
export function demoResponseTokens(stepsPerRound: number): number {
  return 10 + 2 + 4 * stepsPerRound + 3 + 1;
}

/** The per-round budget: the longest response plus two tokens of slack (one more step does not fit). */
export function demoMaxTokens(task: DemoTask): number {
  return demoResponseTokens(task.stepsPerRound) + 2;
}

const task = resolveDemoTask({ length: 12, rounds: 3, maxDigit: 9 });

/** The demo's task, budget and run settings. */
export const DEMO_SETTINGS = Object.freeze({
  task,
  maxTokens: demoMaxTokens(task),
  /** Seeds of the generated training and held-out problems (distinct from the model's). */
  trainSeed: 1001,
  evalSeed: 2002,
  trainProblems: 2000,
  evalProblems: 200,
  /** `train` settings of the demo (flags on the command line override them). */
  train: {
    method: 'motif',
    rounds: task.rounds,
    numGenerations: 8,
    trajectories: 2,
    steps: 40,
    batchSize: 4,
    gradAccum: 1,
    temperature: 1,
    topP: 1,
    continuationTemperature: 1,
    continuationTopP: 1,
    lora: {
      rank: 8,
      alpha: 16,
      targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      rslora: false,
    },
    lr: 2e-3,
    warmupRatio: 0.05,
    maxGradNorm: 1,
    weightDecay: 0,
    saveEvery: 1000,
  } satisfies Partial<TrainConfig>,
});
