/**
 * run.ts — `npm run bench -- <name> [flags]`: the benchmarks of bench/, one command each.
 *   forward   prefill tokens/s on Qwen2.5-0.5B shapes vs the roofline (and PyTorch when installed)
 *   rollout   the MOTIF rollout workload and decode vs llama.cpp (node-llama-cpp), same weights and threads
 *   train     one LoRA-GRPO training step vs PyTorch (Debian's python3-torch), with peak memory
 * Results are recorded by hand in bench/RESULTS.md with the machine, command and medians.
 */
import { benchForward } from './forward.js';
import { benchRollout } from './rollout.js';
import { benchTrain } from './train.js';

const benches: Record<string, (argv: string[]) => Promise<void>> = {
  forward: benchForward,
  rollout: benchRollout,
  train: benchTrain,
};

const [name, ...rest] = process.argv.slice(2);
const bench = name ? benches[name] : undefined;
if (!bench) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [flags]`);
  process.exit(2);
}
await bench(rest);
