/**
 * InfoCommand.ts — `motif-native info [--json]`: version, backends compiled in, CUDA devices, SIMD, threads.
 */
import type { CommandModule } from 'yargs';
import { buildInfo } from '../../info.js';

export const infoCommand: CommandModule<object, { json: boolean }> = {
  command: 'info',
  describe: 'Show the version, the backends compiled in, CUDA devices seen, SIMD level and threads',
  builder: (y) => y.option('json', { type: 'boolean', default: false, describe: 'Print one JSON object' }),
  handler: (argv) => {
    const info = buildInfo();
    if (argv.json) {
      console.log(
        JSON.stringify({ ...info, node: process.version, platform: `${process.platform}-${process.arch}` }, null, 2),
      );
      return;
    }
    const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
    console.log(`motif-native ${info.version} (Node ${process.version}, ${process.platform}-${process.arch})`);
    console.log(`backends compiled in: ${info.backends.join(', ')}`);
    console.log(`CPU: SIMD ${info.simd}, ${info.defaultThreads} threads by default`);
    if (info.cudaDevices.length === 0) {
      console.log(`CUDA devices: none (${info.cudaNote})`);
    } else {
      for (const d of info.cudaDevices)
        console.log(
          `CUDA device ${d.index}: ${d.name}, ${gib(d.totalMemory)}, compute capability ${d.computeCapability}`,
        );
    }
  },
};
