/**
 * fake-trainable.ts — a small, deterministic TrainableModel for the trainer's tests (no addon):
 *
 * - a character-level tokenizer (one id per UTF-16 unit) with a plain chat layout, so prompts and
 *   completions round-trip exactly;
 * - generate() returns canned MOTIF-style responses per question: whether a round is right depends on
 *   the request seed, the round's progress and the adapter (the mean of the lora_B tensors), so rewards
 *   vary within a group and training changes what is sampled;
 * - lossAndGradients() returns gradients that are fixed functions of the batch and the adapter;
 *   optimizerStep() is a real AdamW (torch semantics) with global-norm clipping and NaN skipping;
 * - hooks inject a NaN loss or gradient at chosen calls, or hang a call (for the SIGKILL test).
 *
 * Run as a script (`node --import tsx test/helpers/fake-trainable.ts '<json>'`) it trains in a child
 * process, printing `STEP n` after each step and `HANG` when a hook hangs.
 */
import { pathToFileURL } from 'node:url';
import type { DatasetRow } from '../../lib/data/datasets.js';
import type { GenerateRequest, GenerateResult } from '../../lib/model/generate.js';
import type { ModelConfig } from '../../lib/model/Model.js';
import type { ChatMessage } from '../../lib/text/chat-template.js';
import { adapterShapes } from '../../lib/train/peft.js';
import { type TrainOptions, train } from '../../lib/train/trainer.js';
import type {
  GrpoBatch,
  LoraConfig,
  LossResult,
  OptimizerOptions,
  OptimizerState,
  TrainableModel,
  TrainerTokenizer,
} from '../../lib/train/types.js';

/** A tiny config (shapes only matter for the adapter). */
export const FAKE_CONFIG: ModelConfig = Object.freeze({
  architecture: 'Qwen2ForCausalLM',
  modelType: 'qwen2',
  hiddenSize: 8,
  intermediateSize: 12,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 4,
  vocabSize: 65536,
  maxPositionEmbeddings: 1 << 20,
  rmsNormEps: 1e-6,
  ropeTheta: 10000,
  ropeType: 'default',
  tieWordEmbeddings: true,
  qkvBias: true,
  oBias: false,
  mlpBias: false,
  torchDtype: 'float32',
});

/** A 0..1 hash of integers (deterministic, well mixed). */
export function hash01(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h = Math.imul(h ^ (Math.trunc(x) >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ Math.trunc(x / 2 ** 32), 0x01000193) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0x5bd1e995) >>> 0;
    h = (h ^ (h >>> 15)) >>> 0;
  }
  return h / 2 ** 32;
}

function strHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** One id per UTF-16 code unit; chats rendered as `<|role|>content` turns. */
export const fakeTokenizer: TrainerTokenizer = {
  stopIds: [],
  encodeChat(messages: readonly ChatMessage[], options?: { addGenerationPrompt?: boolean }): Int32Array {
    const text =
      messages.map((m) => `<|${m.role}|>${m.content ?? ''}`).join('') +
      (options?.addGenerationPrompt ? '<|assistant|>' : '');
    return Int32Array.from(text, (ch) => ch.charCodeAt(0));
  },
  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) s += String.fromCharCode(ids[i] as number);
    return s;
  },
} as unknown as TrainerTokenizer;

/** Rows "What is a + b?" with their answers. */
export function fakeRows(n: number): DatasetRow[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `q${i}`,
    question: `What is ${i} + ${i + 3}?`,
    answer: String(2 * i + 3),
    source: { file: 'fake.jsonl', line: i + 1 },
    meta: {},
  }));
}

/** Options of {@link FakeTrainable}. */
export interface FakeOptions {
  /** question -> reference answer (what a right response boxes). */
  answers: Record<string, string>;
  /** 1-based lossAndGradients calls that return a NaN loss (finite gradients). */
  nanLossAtCall?: number[];
  /** 1-based lossAndGradients calls whose gradients hold a NaN (finite loss). */
  nanGradAtCall?: number[];
  /** This lossAndGradients call never resolves (after calling onHang). */
  hangAtLossCall?: number;
  onHang?: () => void;
}

/** The fake model. */
export class FakeTrainable implements TrainableModel {
  readonly config = FAKE_CONFIG;
  readonly tokenizer = fakeTokenizer;
  lora: LoraConfig | undefined;
  adapterEnabled = true;
  lossCalls = 0;
  generateCalls = 0;
  /** Every batch passed to lossAndGradients (for assertions). */
  readonly batches: GrpoBatch[] = [];
  /** Per generate call: whether the adapter was enabled and how many requests it had. */
  readonly generateLog: { enabled: boolean; requests: number }[] = [];
  private readonly _o: FakeOptions;
  private readonly _questions: string[];
  private _w = new Map<string, Float32Array>();
  private _acc = new Map<string, Float32Array>();
  private _m = new Map<string, Float32Array>();
  private _v = new Map<string, Float32Array>();
  private _step = 0;

  constructor(options: FakeOptions) {
    this._o = options;
    this._questions = Object.keys(options.answers).sort((a, b) => b.length - a.length);
  }

  /** The adapter's "skill": 0.5 + 0.45 tanh(200 x mean of every lora_B value) (0.5 with no/disabled adapter). */
  skill(): number {
    if (!this.adapterEnabled || !this.lora) return 0.5;
    let s = 0;
    let n = 0;
    for (const [k, t] of this._w)
      if (k.includes('lora_B'))
        for (const x of t) {
          s += x;
          n++;
        }
    return 0.5 + 0.45 * Math.tanh((200 * s) / Math.max(1, n));
  }

  async generate(requests: readonly GenerateRequest[]): Promise<GenerateResult[]> {
    this.generateCalls++;
    this.generateLog.push({ enabled: this.adapterEnabled, requests: requests.length });
    const p0 = this.skill();
    return requests.map((r) => {
      const prompt = this.tokenizer.decode(r.tokens as Int32Array);
      const user = prompt.slice(prompt.lastIndexOf('<|user|>') + 8, prompt.lastIndexOf('<|assistant|>'));
      const question = this._questions.find((q) => user.startsWith(q));
      if (question === undefined)
        throw new Error(`fake generate: no canned answer for prompt ${JSON.stringify(user.slice(0, 60))}`);
      const answer = this._o.answers[question] as string;
      const progress = /Progress in round (\d+): "([\s\S]*)"/.exec(user);
      const round = progress ? Number(progress[1]) + 1 : 1;
      const final = user.includes('final (') || !prompt.includes('solve it in');
      const good = progress ? progress[2]?.includes('good') || progress[2]?.includes(`\\boxed{${answer}}`) : false;
      const p = progress ? Math.min(0.95, Math.max(0.05, p0 + (good ? 0.3 : -0.2))) : p0;
      const n = r.n ?? 1;
      const seed = r.seed ?? 0;
      return {
        completions: Array.from({ length: n }, (_, j) => {
          const greedy = (r.temperature ?? 1) === 0;
          const u = greedy ? hash01(strHash(question), round) : hash01(seed, j, round);
          const u2 = greedy ? 0.9 : hash01(seed, j, round, 7);
          const right = u < p;
          const filler = ' hmm'.repeat(Math.floor(u2 * 5));
          let text: string;
          if (u2 < 0.15) text = `I think it is ${right ? answer : 'unknown'}${filler}`;
          else if (final)
            text = `<reasoning>\nround ${round}${filler}\n</reasoning>\n<answer>\n\\boxed{${right ? answer : `${answer}1`}}\n</answer>\n`;
          else
            text = `<reasoning>\nround ${round}${filler}\n</reasoning>\n<answer>\nprogress ${right ? 'good' : 'bad'}\n</answer>\n`;
          const all = Int32Array.from(text, (ch) => ch.charCodeAt(0));
          const tokens = all.length > r.maxTokens ? all.slice(0, r.maxTokens) : all;
          const logprobs = Float32Array.from(tokens, (_t, i) => -0.05 - 0.9 * hash01(seed, j, i));
          return {
            tokens,
            logprobs,
            text: this.tokenizer.decode(tokens),
            finishReason: tokens.length < all.length ? ('length' as const) : ('stop' as const),
          };
        }),
      };
    });
  }

  async createLora(config: LoraConfig): Promise<void> {
    this.lora = { ...config, targets: [...config.targets] };
    this._w.clear();
    this._acc.clear();
    this._m.clear();
    this._v.clear();
    this._step = 0;
    let k = 0;
    for (const [name, shape] of adapterShapes(this.config, config)) {
      const t = new Float32Array((shape[0] as number) * (shape[1] as number));
      if (name.includes('lora_A')) {
        const bound = 1 / Math.sqrt(shape[1] as number);
        for (let i = 0; i < t.length; i++) t[i] = (2 * hash01(config.seed, k, i) - 1) * bound;
      }
      this._w.set(name, t);
      this._acc.set(name, new Float32Array(t.length));
      this._m.set(name, new Float32Array(t.length));
      this._v.set(name, new Float32Array(t.length));
      k++;
    }
  }

  async getAdapterTensors(): Promise<Map<string, Float32Array>> {
    return new Map([...this._w].map(([k, v]) => [k, v.slice()]));
  }

  async setAdapterTensors(t: Map<string, Float32Array>): Promise<void> {
    if (t.size !== this._w.size) throw new Error(`fake setAdapterTensors: ${t.size} tensors, expected ${this._w.size}`);
    for (const [k, v] of t) {
      const w = this._w.get(k);
      if (!w || w.length !== v.length) throw new Error(`fake setAdapterTensors: bad tensor ${k}`);
      w.set(v);
    }
  }

  setAdapterEnabled(on: boolean): void {
    this.adapterEnabled = on;
  }

  async lossAndGradients(batch: GrpoBatch, opts: { accumulate?: boolean; scale?: number } = {}): Promise<LossResult> {
    this.lossCalls++;
    this.batches.push(batch);
    const call = this.lossCalls;
    if (this._o.hangAtLossCall === call) {
      this._o.onHang?.();
      return new Promise<LossResult>(() => {});
    }
    const n = batch.completionIds.length;
    const groups = n / batch.groupSize;
    if (!Number.isInteger(groups)) throw new Error('fake loss: completions are not whole groups');
    if (batch.promptIds.length !== groups && batch.promptIds.length !== n) throw new Error('fake loss: bad promptIds');
    if (batch.rewards.length !== n || batch.advantages?.length !== n)
      throw new Error('fake loss: bad rewards/advantages');
    batch.oldLogps?.forEach((l, i) => {
      if (l.length !== batch.completionIds[i]?.length) throw new Error('fake loss: oldLogps do not match completions');
    });
    const adv = batch.advantages as number[];
    let loss = 0;
    let tokens = 0;
    const lens = batch.completionIds.map((c) => c.length);
    for (let i = 0; i < n; i++) {
      const lp = batch.oldLogps?.[i] ?? [];
      loss -= ((adv[i] as number) * lp.reduce((a, b) => a + b, 0)) / Math.max(1, lp.length) / n;
      tokens += lens[i] as number;
    }
    const scale = opts.scale ?? 1;
    const drive = adv.reduce((s, a, i) => s + a * (batch.rewards[i] as number), 0) / n;
    const spread = adv.reduce((s, a, i) => s + (a * (lens[i] as number)) / 100, 0) / n;
    const grads = new Map<string, Float32Array>();
    let t = 0;
    for (const [name, w] of this._w) {
      const g = new Float32Array(w.length);
      const isB = name.includes('lora_B');
      for (let e = 0; e < g.length; e++)
        g[e] =
          scale *
          (isB ? -drive * (1 + 0.5 * Math.sin(e + t)) : 0.1 * spread * Math.cos(e + t) + 0.01 * (w[e] as number));
      grads.set(name, g);
      t++;
    }
    if (this._o.nanGradAtCall?.includes(call)) (grads.values().next().value as Float32Array)[0] = Number.NaN;
    if (this._o.nanLossAtCall?.includes(call)) loss = Number.NaN;
    if (opts.accumulate)
      for (const [name, g] of grads) {
        const a = this._acc.get(name) as Float32Array;
        for (let e = 0; e < g.length; e++) a[e] = (a[e] as number) + (g[e] as number);
      }
    return { loss, grads, stats: { tokens, clipFraction: 0, kl: 0 } };
  }

  async optimizerStep(o: OptimizerOptions): Promise<{ gradNorm: number; skipped: boolean }> {
    let sq = 0;
    for (const a of this._acc.values()) for (const x of a) sq += x * x;
    const norm = Math.sqrt(sq);
    const zero = () => {
      for (const a of this._acc.values()) a.fill(0);
    };
    if (!Number.isFinite(norm)) {
      zero();
      return { gradNorm: norm, skipped: true };
    }
    const clip = o.maxGradNorm > 0 && norm > o.maxGradNorm ? o.maxGradNorm / (norm + 1e-6) : 1;
    this._step++;
    const bc1 = 1 - o.beta1 ** this._step;
    const bc2 = 1 - o.beta2 ** this._step;
    for (const [name, w] of this._w) {
      const g = this._acc.get(name) as Float32Array;
      const m = this._m.get(name) as Float32Array;
      const v = this._v.get(name) as Float32Array;
      for (let e = 0; e < w.length; e++) {
        const ge = (g[e] as number) * clip;
        w[e] = (w[e] as number) * (1 - o.lr * o.weightDecay);
        m[e] = o.beta1 * (m[e] as number) + (1 - o.beta1) * ge;
        v[e] = o.beta2 * (v[e] as number) + (1 - o.beta2) * ge * ge;
        w[e] = (w[e] as number) - (o.lr * ((m[e] as number) / bc1)) / (Math.sqrt((v[e] as number) / bc2) + o.eps);
      }
    }
    zero();
    return { gradNorm: norm, skipped: false };
  }

  async getOptimizerState(): Promise<OptimizerState> {
    const tensors = new Map<string, Float32Array>();
    for (const [k, m] of this._m) {
      tensors.set(`${k}.exp_avg`, m.slice());
      tensors.set(`${k}.exp_avg_sq`, (this._v.get(k) as Float32Array).slice());
    }
    return { step: this._step, tensors };
  }

  async setOptimizerState(s: OptimizerState): Promise<void> {
    for (const [k, m] of this._m) {
      const a = s.tensors.get(`${k}.exp_avg`);
      const b = s.tensors.get(`${k}.exp_avg_sq`);
      if (!a || !b || a.length !== m.length || b.length !== m.length)
        throw new Error(`fake setOptimizerState: bad state for ${k}`);
      m.set(a);
      (this._v.get(k) as Float32Array).set(b);
    }
    this._step = s.step;
  }
}

/** A fake model with canned answers for `rows`. */
export function fakeModel(rows: readonly DatasetRow[], options: Omit<FakeOptions, 'answers'> = {}): FakeTrainable {
  return new FakeTrainable({ ...options, answers: Object.fromEntries(rows.map((r) => [r.question, r.answer])) });
}

/** Small, fast training settings for tests (lr large enough that training visibly changes the adapter). */
export function fastSettings(): Partial<TrainOptions> {
  return {
    steps: 4,
    batchSize: 2,
    numGenerations: 4,
    trajectories: 2,
    rounds: 3,
    maxTokens: 200,
    lr: 1e-2,
    warmupRatio: 0.25,
    maxGradNorm: 1,
    lora: { rank: 2, alpha: 4, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: false },
    saveEvery: 2,
    seed: 7,
  };
}

// Child-process entry: `node --import tsx test/helpers/fake-trainable.ts '{"runDir":...,"rows":8,...}'`.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as { rows: number; hangAtLossCall?: number } & Partial<TrainOptions>;
  const { rows: nRows, hangAtLossCall, ...rest } = spec;
  const rows = fakeRows(nRows);
  const model = fakeModel(rows, { hangAtLossCall, onHang: () => process.stdout.write('HANG\n') });
  await train(model, {
    ...fastSettings(),
    ...rest,
    dataset: rows,
    runDir: rest.runDir as string,
    log: () => {},
    onStep: (m) => {
      process.stdout.write(`STEP ${m.step}\n`);
    },
  });
  process.stdout.write('DONE\n');
}
