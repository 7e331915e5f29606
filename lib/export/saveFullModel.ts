/**
 * saveFullModel.ts — writes the weights of a model under full-parameter training as a new
 * HuggingFace folder (`Model.saveModel`, behind `motif-native sft --full`).
 *
 * The folder gets one model.safetensors holding every weight the engine trains, under its HF name
 * (a tied LM head is not written: config.json's tie_word_embeddings says so), plus config.json, the
 * tokenizer and the other small files copied from the folder the model was loaded from. Each tensor
 * is stored in the dtype the source checkpoint stored it in (rounded to nearest even), or in `dtype`
 * when given; tensors are read from the engine and written one at a time. The folder is built under
 * a temporary name and renamed into place; an existing folder is replaced only with `overwrite`,
 * and never when it is the source folder.
 */
import path from 'node:path';
import { openSafetensorsModel } from '../formats/safetensors.js';
import { encodeFloats, type StreamedTensor, writeSafetensorsStreamed } from '../formats/safetensors-write.js';
import { MotifError } from '../native/errors.js';
import { replaceDir } from '../train/peft.js';
import type { ExportDtype } from './exportGguf.js';
import { copyModelSideFiles, exists } from './mergeAdapter.js';

/** The trained tensors, as the engine lists and reads them. */
export interface FullTensorSource {
  names: readonly string[];
  shapes: readonly (readonly number[])[];
  /** The current f32 weights of tensor `name`. */
  read(name: string): Float32Array;
}

/** Options of {@link saveFullModel}. */
export interface SaveFullModelOptions {
  /** The folder the model was loaded from (its config, tokenizer and stored dtypes are reused). */
  sourceDir: string;
  /** The folder to write. */
  outDir: string;
  /** Stored precision. Default: each tensor's dtype in the source checkpoint. */
  dtype?: ExportDtype;
  /** Replace an existing folder. Default false: an existing outDir is an error. */
  overwrite?: boolean;
}

const STORED = { f32: 'F32', f16: 'F16', bf16: 'BF16' } as const;

/** Writes the model folder (see the file comment); returns the number of tensors written. */
export async function saveFullModel(source: FullTensorSource, options: SaveFullModelOptions): Promise<number> {
  const sourceDir = path.resolve(options.sourceDir);
  const outDir = path.resolve(options.outDir);
  if (outDir === sourceDir)
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      `saveModel: ${outDir} is the folder the model was loaded from; write the trained model somewhere else`,
    );
  if (options.dtype !== undefined && !Object.hasOwn(STORED, options.dtype))
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      `saveModel: dtype must be f32, f16 or bf16, got ${options.dtype}`,
    );
  if (!options.overwrite && (await exists(outDir)))
    throw new MotifError(
      'ERR_MOTIF_INVALID_ARGUMENT',
      `saveModel: ${outDir} already exists; choose a new folder or pass overwrite to replace it`,
    );
  const stored = new Map<string, string>();
  const base = await openSafetensorsModel(sourceDir);
  try {
    for (const [name, t] of base.tensors) stored.set(name, t.dtype);
  } finally {
    await base.close();
  }
  const tensors = new Map<string, StreamedTensor>();
  source.names.forEach((name, i) => {
    const from = stored.get(name);
    const dtype =
      options.dtype !== undefined ? STORED[options.dtype] : from === 'F16' || from === 'BF16' ? from : 'F32';
    tensors.set(name, {
      dtype,
      shape: source.shapes[i],
      fill: (write) => write(encodeFloats(source.read(name), dtype)),
    });
  });
  await replaceDir(outDir, async (tmp) => {
    await copyModelSideFiles(sourceDir, tmp);
    await writeSafetensorsStreamed(path.join(tmp, 'model.safetensors'), tensors, { metadata: { format: 'pt' } });
  });
  return tensors.size;
}
