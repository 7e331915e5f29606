/**
 * run.ts — `npm run bench -- <name> [flags]`: the benchmarks of bench/, one command each.
 *   forward   prefill tokens/s on Qwen2.5-0.5B shapes vs the roofline (and PyTorch when installed)
 * Results are recorded by hand in bench/RESULTS.md with the machine, command and medians.
 */
import { benchForward } from './forward.js';

const benches: Record<string, (argv: string[]) => Promise<void>> = { forward: benchForward };

const [name, ...rest] = process.argv.slice(2);
const bench = name ? benches[name] : undefined;
if (!bench) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [flags]`);
  process.exit(2);
}
await bench(rest);
