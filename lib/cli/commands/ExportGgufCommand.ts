/**
 * ExportGgufCommand.ts — `motif-native export-gguf --model DIR --out FILE [--dtype f32|f16|bf16]`:
 * converts a HuggingFace Qwen2/Llama folder to a GGUF file for llama.cpp / ollama (lib/export/exportGguf.ts),
 * with a progress line on stderr and a summary line on stdout. Errors reach cli.ts's handler as MotifErrors.
 */
import type { CommandModule } from 'yargs';
import { type ExportDtype, exportGguf } from '../../export/exportGguf.js';
import { invalidParameterError } from '../../native/errors.js';
import { mebibytes, progressLine, shownPath } from '../progress-line.js';

interface ExportGgufArgs {
  model: string;
  out: string;
  dtype?: string;
  quiet: boolean;
}

const DTYPES = ['f32', 'f16', 'bf16'];

/** The `export-gguf` yargs command (register with `.command(exportGgufCommand)` in cli.ts). */
export const exportGgufCommand: CommandModule<object, ExportGgufArgs> = {
  command: 'export-gguf',
  describe: 'Convert a HuggingFace Qwen2/Llama folder to a GGUF file for llama.cpp and ollama',
  builder: (y) =>
    y
      .option('model', {
        type: 'string',
        demandOption: true,
        describe: 'HuggingFace model folder (config.json + safetensors)',
      })
      .option('out', { type: 'string', demandOption: true, describe: 'GGUF file to write (replaced atomically)' })
      .option('dtype', {
        type: 'string',
        describe: "Precision of the weights: f32, f16 or bf16 (default: the checkpoint's)",
      })
      .option('quiet', { type: 'boolean', default: false, describe: 'No progress line' })
      .example('$0 export-gguf --model ./Qwen2.5-0.5B-Instruct --out qwen.gguf --dtype f16', 'half-precision GGUF'),
  handler: async (argv) => {
    if (argv.dtype !== undefined && !DTYPES.includes(argv.dtype))
      throw invalidParameterError('--dtype', 'f32, f16 or bf16', argv.dtype);
    const progress = progressLine('export-gguf', argv.quiet);
    const t0 = process.hrtime.bigint();
    let result: Awaited<ReturnType<typeof exportGguf>>;
    try {
      result = await exportGguf({
        modelDir: argv.model,
        outFile: argv.out,
        dtype: argv.dtype as ExportDtype | undefined,
        onProgress: (p) =>
          progress.update(
            p.bytesWritten,
            p.totalBytes,
            `tensor ${p.tensorIndex + 1}/${p.tensorCount} ${p.tensor}  ${mebibytes(p.bytesWritten)} / ${mebibytes(p.totalBytes)}`,
          ),
      });
    } finally {
      progress.done();
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const vocab = result.tokenizer === 'placeholder' ? 'placeholder vocabulary (no tokenizer.json)' : 'tokenizer.json';
    console.log(
      `wrote ${shownPath(result.outFile)}: ${result.architecture}, ${result.dtype}, ` +
        `${result.tensorCount} tensors, ${mebibytes(result.fileBytes)}, ${vocab}, in ${seconds.toFixed(1)} s`,
    );
    if (result.skippedTensors.length > 0)
      console.log(`not exported (not used by the model): ${result.skippedTensors.join(', ')}`);
  },
};
