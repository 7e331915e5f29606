/**
 * peft.ts — LoRA adapters in HuggingFace PEFT's format: `adapter_config.json` (as PEFT's
 * `save_pretrained` writes it: every LoraConfig field, keys sorted, indent 2) and
 * `adapter_model.safetensors` with PEFT tensor names
 * (`base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight`; lora_A [r, in], lora_B [out, r]).
 *
 * Saving writes the folder under a temporary name and renames it into place. Loading accepts
 * adapters written by HF PEFT (F32, F16 or BF16; the adapter-name infix `.default.` tolerated) and
 * checks every tensor's name and shape against the model's config.json; any mismatch is a MotifError
 * naming the file and the tensor. Features the engine does not run (DoRA, per-module rank/alpha
 * patterns, layer subsets, bias training, modules_to_save) are refused with a clear message.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { convertFloats, type FloatDtype } from '../formats/dtypes.js';
import { SafetensorsFile } from '../formats/safetensors.js';
import { type TensorToWrite, type WriteDtype, writeSafetensors } from '../formats/safetensors-write.js';
import type { ModelConfig } from '../model/Model.js';
import { MotifError } from '../native/errors.js';
import { LORA_TARGETS, type LoraConfig, type LoraTarget, type TrainableModel } from './types.js';

/** File name of a PEFT adapter's config. */
export const ADAPTER_CONFIG = 'adapter_config.json';
/** File name of a PEFT adapter's tensors. */
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/** The sizes of a model that an adapter's shapes depend on (a subset of the engine's ModelConfig). */
export type AdapterModelShape = Pick<
  ModelConfig,
  'hiddenSize' | 'numHeads' | 'numKvHeads' | 'headDim' | 'intermediateSize' | 'numLayers'
>;

const ATTN: ReadonlySet<string> = new Set(['q_proj', 'k_proj', 'v_proj', 'o_proj']);

/** PEFT's name of one LoRA matrix: layer `layer`, projection `target`, `A` or `B`. */
export function loraTensorName(layer: number, target: string, which: 'A' | 'B'): string {
  const block = ATTN.has(target) ? 'self_attn' : 'mlp';
  return `base_model.model.model.layers.${layer}.${block}.${target}.lora_${which}.weight`;
}

/** [out, in] of a projection for a model config. */
export function projectionShape(config: AdapterModelShape, target: string): [number, number] {
  const h = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const f = config.intermediateSize;
  switch (target) {
    case 'q_proj':
      return [q, h];
    case 'k_proj':
    case 'v_proj':
      return [kv, h];
    case 'o_proj':
      return [h, q];
    case 'gate_proj':
    case 'up_proj':
      return [f, h];
    case 'down_proj':
      return [h, f];
    default:
      throw new MotifError(
        'ERR_MOTIF_INVALID_ARGUMENT',
        `'${target}' is not a LoRA target (${LORA_TARGETS.join(', ')})`,
      );
  }
}

/** Every tensor of an adapter with its expected shape, in layer / target / A-B order. */
export function adapterShapes(
  config: AdapterModelShape,
  lora: Pick<LoraConfig, 'rank' | 'targets'>,
): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (let i = 0; i < config.numLayers; i++)
    for (const t of LORA_TARGETS) {
      if (!lora.targets.includes(t)) continue;
      const [o, n] = projectionShape(config, t);
      out.set(loraTensorName(i, t, 'A'), [lora.rank, n]);
      out.set(loraTensorName(i, t, 'B'), [o, lora.rank]);
    }
  return out;
}

/** Checks a LoraConfig (rank, alpha, targets) and returns its targets in canonical order. */
export function checkLoraConfig(lora: LoraConfig, where = 'lora'): LoraTarget[] {
  const bad = (what: string, v: unknown) =>
    new MotifError('ERR_MOTIF_INVALID_ARGUMENT', `${where}: ${what} (got ${JSON.stringify(v)})`);
  if (!Number.isInteger(lora.rank) || lora.rank < 1) throw bad('rank must be a positive integer', lora.rank);
  if (typeof lora.alpha !== 'number' || !Number.isFinite(lora.alpha) || lora.alpha <= 0)
    throw bad('alpha must be a positive number', lora.alpha);
  if (!Array.isArray(lora.targets) || lora.targets.length === 0)
    throw bad(`targets must be a non-empty subset of ${LORA_TARGETS.join(',')}`, lora.targets);
  for (const t of lora.targets)
    if (!(LORA_TARGETS as readonly string[]).includes(t))
      throw bad(`target '${t}' is not one of ${LORA_TARGETS.join(', ')}`, lora.targets);
  if (new Set(lora.targets).size !== lora.targets.length) throw bad('targets has repeats', lora.targets);
  return LORA_TARGETS.filter((t) => lora.targets.includes(t));
}

/** adapter_config.json's content for a LoRA adapter, field for field as PEFT (0.14–0.15) writes it. */
export function adapterConfigJson(lora: LoraConfig, baseModel: string | null): Record<string, unknown> {
  const cfg: Record<string, unknown> = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModel,
    bias: 'none',
    corda_config: null,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: lora.alpha,
    lora_bias: false,
    lora_dropout: 0.0,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: lora.rank,
    rank_pattern: {},
    revision: null,
    target_modules: checkLoraConfig(lora),
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_dora: false,
    use_rslora: lora.rslora,
  };
  return Object.fromEntries(Object.entries(cfg).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * adapter_config.json's text: Python's `json.dumps(indent=2, sort_keys=True)` layout, as PEFT
 * writes it (no final newline; `lora_dropout` as the float `0.0`).
 */
export function adapterConfigText(lora: LoraConfig, baseModel: string | null): string {
  return JSON.stringify(adapterConfigJson(lora, baseModel), null, 2).replace(
    '"lora_dropout": 0,',
    '"lora_dropout": 0.0,',
  );
}

/** Options of {@link saveAdapter} and {@link writeAdapterFiles}. */
export interface SaveAdapterOptions {
  /** adapter_config.json's base_model_name_or_path (a hub id or a folder). Default null. */
  baseModel?: string | null;
  /** Dtype of the stored tensors. Default F32 (bit-exact). */
  dtype?: WriteDtype;
}

/** Writes a PEFT folder's two files into an existing folder `dir` (each file atomically). */
export async function writeAdapterFiles(
  dir: string,
  lora: LoraConfig,
  tensors: ReadonlyMap<string, Float32Array>,
  config: ModelConfig,
  options: SaveAdapterOptions = {},
): Promise<void> {
  const shapes = adapterShapes(config, { rank: lora.rank, targets: checkLoraConfig(lora) });
  const out = new Map<string, TensorToWrite>();
  for (const [name, shape] of shapes) {
    const data = tensors.get(name);
    if (!data)
      throw new MotifError('ERR_MOTIF_INTERNAL', `adapter tensor '${name}' is missing from the model's adapter`);
    out.set(name, { data, shape });
  }
  for (const name of tensors.keys())
    if (!shapes.has(name)) throw new MotifError('ERR_MOTIF_INTERNAL', `unexpected adapter tensor '${name}'`);
  await writeSafetensors(path.join(dir, ADAPTER_WEIGHTS), out, {
    dtype: options.dtype ?? 'F32',
    metadata: { format: 'pt' },
  });
  const cfgPath = path.join(dir, ADAPTER_CONFIG);
  const tmp = `${cfgPath}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, adapterConfigText(lora, options.baseModel ?? null));
  await rename(tmp, cfgPath);
}

/**
 * Replaces folder `dir` with a new one built by `fill(tmpDir)`: built beside it under a temporary
 * name, then renamed into place (an existing `dir` is moved aside first and removed after).
 */
export async function replaceDir(dir: string, fill: (tmpDir: string) => Promise<void>): Promise<void> {
  const abs = path.resolve(dir);
  await mkdir(path.dirname(abs), { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.tmp-${tag}`);
  await mkdir(tmp);
  try {
    await fill(tmp);
    const old = path.join(path.dirname(abs), `.${path.basename(abs)}.old-${tag}`);
    const exists = await stat(abs).then(
      () => true,
      () => false,
    );
    if (exists) await rename(abs, old);
    await rename(tmp, abs);
    if (exists) await rm(old, { recursive: true, force: true });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
}

/** Saves the model's adapter as a PEFT folder `dir` (written to a temporary folder, then renamed). */
export async function saveAdapter(model: TrainableModel, dir: string, options: SaveAdapterOptions = {}): Promise<void> {
  const lora = model.lora;
  if (!lora) throw new MotifError('ERR_MOTIF_INVALID_ARGUMENT', 'saveAdapter: the model has no LoRA adapter');
  const tensors = await model.getAdapterTensors();
  await replaceDir(dir, (tmp) => writeAdapterFiles(tmp, lora, tensors, model.config, options));
}

/** What {@link readAdapter} returns. */
export interface ReadAdapter {
  lora: LoraConfig;
  /** Tensors under canonical PEFT names, as f32. */
  tensors: Map<string, Float32Array>;
  /** The parsed adapter_config.json. */
  config: Record<string, unknown>;
}

const NAME_RE =
  /^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.lora_(A|B)(?:\.default)?\.weight$/;

function formatError(message: string): MotifError {
  return new MotifError('ERR_MOTIF_FORMAT', message);
}

function unsupported(message: string): MotifError {
  return new MotifError('ERR_MOTIF_UNSUPPORTED', message);
}

/** Reads and checks adapter_config.json's LoRA fields. */
async function readAdapterConfig(file: string): Promise<{ cfg: Record<string, unknown>; lora: LoraConfig }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MotifError(
      'ERR_MOTIF_IO',
      `${file}: cannot read the adapter config (${code === 'ENOENT' ? 'no such file' : code})`,
      {
        cause: err,
      },
    );
  }
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw formatError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg))
    throw formatError(`${file}: expected a JSON object`);
  if (cfg.peft_type !== 'LORA')
    throw unsupported(
      `${file}: peft_type is ${JSON.stringify(cfg.peft_type)}; only LoRA adapters ("LORA") are supported`,
    );
  const r = cfg.r;
  if (!Number.isInteger(r) || (r as number) < 1)
    throw formatError(`${file}: field 'r' must be a positive integer (got ${JSON.stringify(r)})`);
  const alpha = cfg.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !(alpha > 0))
    throw formatError(`${file}: field 'lora_alpha' must be a positive number (got ${JSON.stringify(alpha)})`);
  const refuse = (field: string, why: string) => {
    throw unsupported(`${file}: ${field} — ${why}; this engine runs plain LoRA on all layers`);
  };
  if (cfg.use_dora === true) refuse('use_dora is true', 'DoRA adapters are not supported');
  if (cfg.fan_in_fan_out === true) refuse('fan_in_fan_out is true', 'transposed (Conv1D) weights are not supported');
  if (cfg.bias !== undefined && cfg.bias !== 'none')
    refuse(`bias is ${JSON.stringify(cfg.bias)}`, 'trained biases are not supported');
  if (cfg.lora_bias === true) refuse('lora_bias is true', 'LoRA biases are not supported');
  for (const f of ['rank_pattern', 'alpha_pattern'])
    if (cfg[f] && typeof cfg[f] === 'object' && Object.keys(cfg[f] as object).length > 0)
      refuse(`${f} is set`, 'per-module ranks/alphas are not supported');
  if (cfg.layers_to_transform !== null && cfg.layers_to_transform !== undefined)
    refuse('layers_to_transform is set', 'adapters on a subset of layers are not supported');
  if (Array.isArray(cfg.modules_to_save) && cfg.modules_to_save.length > 0)
    refuse('modules_to_save is set', 'fully trained modules are not supported');
  const tm = cfg.target_modules;
  const targets = Array.isArray(tm) ? tm.map(String) : [];
  return {
    cfg,
    lora: { rank: r as number, alpha, targets, rslora: cfg.use_rslora === true, seed: 0 },
  };
}

/** Reads a tensor of any float dtype as f32. */
export async function readF32(file: SafetensorsFile, name: string): Promise<Float32Array> {
  const t = file.get(name);
  const dt: Record<string, FloatDtype> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };
  const from = dt[t.dtype];
  if (!from) throw formatError(`${file.path}: tensor '${name}' has dtype ${t.dtype}; expected F32, F16 or BF16`);
  const raw = await file.readRange(name, 0, t.byteLength, new Uint8Array(t.byteLength));
  const out = new Float32Array(t.numel);
  convertFloats(raw, from, new Uint8Array(out.buffer), 'f32', t.numel);
  return out;
}

/**
 * Reads a PEFT LoRA folder and checks it against `modelConfig` (every layer, both matrices of
 * each target, shapes [r, in] / [out, r]). Targets come from the tensors (target_modules may be a
 * regex or "all-linear" in PEFT); a target listed in the config but without tensors is an error.
 */
export async function readAdapter(dir: string, modelConfig: AdapterModelShape): Promise<ReadAdapter> {
  const abs = path.resolve(dir);
  const cfgFile = path.join(abs, ADAPTER_CONFIG);
  const { cfg, lora } = await readAdapterConfig(cfgFile);
  const wFile = path.join(abs, ADAPTER_WEIGHTS);
  const hasBin = await stat(path.join(abs, 'adapter_model.bin')).then(
    () => true,
    () => false,
  );
  const hasSt = await stat(wFile).then(
    () => true,
    () => false,
  );
  if (!hasSt && hasBin)
    throw unsupported(
      `${abs}: has adapter_model.bin (a pickle) but no ${ADAPTER_WEIGHTS}; re-save it with safetensors (PEFT's default)`,
    );
  const file = await SafetensorsFile.open(wFile);
  try {
    const found = new Map<string, string>(); // canonical name -> name in the file
    const targets = new Set<string>();
    for (const name of file.tensors.keys()) {
      const m = NAME_RE.exec(name);
      if (!m)
        throw formatError(
          `${wFile}: tensor '${name}' is not a LoRA matrix of a supported projection (expected names like '${loraTensorName(0, 'q_proj', 'A')}')`,
        );
      const [, layerText, block, target, which] = m as unknown as [string, string, string, string, 'A' | 'B'];
      const layer = Number(layerText);
      if ((ATTN.has(target) ? 'self_attn' : 'mlp') !== block)
        throw formatError(
          `${wFile}: tensor '${name}': ${target} belongs under ${ATTN.has(target) ? 'self_attn' : 'mlp'}`,
        );
      if (layer >= modelConfig.numLayers)
        throw formatError(
          `${wFile}: tensor '${name}' is for layer ${layer}, but config.json has ${modelConfig.numLayers} layers`,
        );
      const canonical = loraTensorName(layer, target, which);
      if (found.has(canonical))
        throw formatError(`${wFile}: tensor '${name}' appears twice (with and without '.default')`);
      found.set(canonical, name);
      targets.add(target);
    }
    if (targets.size === 0) throw formatError(`${wFile}: holds no LoRA tensors`);
    for (const t of lora.targets)
      if ((LORA_TARGETS as readonly string[]).includes(t) && !targets.has(t))
        throw formatError(`${cfgFile}: target_modules lists '${t}' but ${ADAPTER_WEIGHTS} has no tensors for it`);
    lora.targets = LORA_TARGETS.filter((t) => targets.has(t));
    const shapes = adapterShapes(modelConfig, lora);
    const tensors = new Map<string, Float32Array>();
    for (const [name, shape] of shapes) {
      const inFile = found.get(name);
      if (!inFile)
        throw formatError(`${wFile}: tensor '${name}' is missing (every layer needs lora_A and lora_B of each target)`);
      const got = file.get(inFile).shape;
      if (got.length !== 2 || got[0] !== shape[0] || got[1] !== shape[1])
        throw formatError(
          `${wFile}: tensor '${inFile}' has shape [${got.join(', ')}], expected [${shape.join(', ')}] ` +
            `(r = ${lora.rank} from ${ADAPTER_CONFIG}, sizes from the model's config.json)`,
        );
      tensors.set(name, await readF32(file, inFile));
    }
    return { lora, tensors, config: cfg };
  } finally {
    await file.close();
  }
}

/** True when two LoRA configs describe the same adapter layout and scaling. */
export function sameLoraLayout(a: LoraConfig | undefined, b: LoraConfig): boolean {
  return (
    a !== undefined &&
    a.rank === b.rank &&
    a.alpha === b.alpha &&
    a.rslora === b.rslora &&
    a.targets.length === b.targets.length &&
    b.targets.every((t) => a.targets.includes(t))
  );
}

/**
 * Loads a PEFT LoRA folder into the model: creates a matching adapter when the model has none (or
 * a different one), then sets its tensors. Returns the adapter's config.
 */
export async function loadAdapter(model: TrainableModel, dir: string): Promise<LoraConfig> {
  const { lora, tensors } = await readAdapter(dir, model.config);
  if (!sameLoraLayout(model.lora, lora)) await model.createLora(lora);
  await model.setAdapterTensors(tensors);
  return lora;
}
