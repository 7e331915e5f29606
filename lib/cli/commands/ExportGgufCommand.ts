/**
 * ExportGgufCommand.ts — `motif-native export-gguf --model DIR --out FILE [--dtype f32|f16|bf16]`:
 * converts a HuggingFace Qwen2/Llama folder to a GGUF file for llama.cpp / ollama (lib/export/exportGguf.ts),
 * with a progress line on stderr and a summary line on stdout. Errors reach cli.ts's handler as MotifErrors.
 */
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { type ExportDtype, type ExportProgress, exportGguf } from '../../export/exportGguf.js';
import { invalidParameterError } from '../../native/errors.js';

interface ExportGgufArgs {
  model: string;
  out: string;
  dtype?: string;
  quiet: boolean;
}

const DTYPES = ['f32', 'f16', 'bf16'];

/** A path relative to the working folder when it lies under it, else absolute. */
function shown(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

function mb(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MiB`;
}

/** A throttled one-line progress display: rewritten in place on a TTY, a few plain lines otherwise. */
function progressPrinter(quiet: boolean): { update: (p: ExportProgress) => void; done: () => void } {
  const tty = process.stderr.isTTY === true;
  let last = 0;
  let lastQuarter = 0;
  let shown = false;
  return {
    update: (p) => {
      if (quiet) return;
      const pct = p.totalBytes > 0 ? Math.floor((100 * p.bytesWritten) / p.totalBytes) : 100;
      const now = Date.now();
      if (tty) {
        if (now - last < 100 && p.bytesWritten < p.totalBytes) return;
        last = now;
        const line = `export-gguf: ${String(pct).padStart(3)}%  tensor ${p.tensorIndex + 1}/${p.tensorCount} ${p.tensor}  ${mb(p.bytesWritten)} / ${mb(p.totalBytes)}`;
        process.stderr.write(
          `\r${line.slice(0, (process.stderr.columns || 100) - 1).padEnd(Math.min(99, (process.stderr.columns || 100) - 1))}`,
        );
        shown = true;
      } else if (Math.floor(pct / 25) > lastQuarter) {
        lastQuarter = Math.floor(pct / 25);
        process.stderr.write(`export-gguf: ${pct}% (${mb(p.bytesWritten)} of ${mb(p.totalBytes)})\n`);
      }
    },
    done: () => {
      if (shown) process.stderr.write('\n');
    },
  };
}

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
    const progress = progressPrinter(argv.quiet);
    const t0 = process.hrtime.bigint();
    let result: Awaited<ReturnType<typeof exportGguf>>;
    try {
      result = await exportGguf({
        modelDir: argv.model,
        outFile: argv.out,
        dtype: argv.dtype as ExportDtype | undefined,
        onProgress: progress.update,
      });
    } finally {
      progress.done();
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const vocab = result.tokenizer === 'placeholder' ? 'placeholder vocabulary (no tokenizer.json)' : 'tokenizer.json';
    console.log(
      `wrote ${shown(result.outFile)}: ${result.architecture}, ${result.dtype}, ` +
        `${result.tensorCount} tensors, ${mb(result.fileBytes)}, ${vocab}, in ${seconds.toFixed(1)} s`,
    );
    if (result.skippedTensors.length > 0)
      console.log(`not exported (not used by the model): ${result.skippedTensors.join(', ')}`);
  },
};
