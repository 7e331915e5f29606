/**
 * machine.ts — what the benchmarks say about the machine they ran on: CPU model, cores, memory,
 * and the measured read bandwidth and fp32 FMA peak (bench/native/roofline.cpp) for the roofline.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../lib/native/binding.js';

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  commit: string;
}

export interface Roofline {
  threads: number;
  readBandwidthGBs: number;
  fmaPeakGflops: number;
}

export function machineInfo(): MachineInfo {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: packageRoot, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: packageRoot,
      encoding: 'utf8',
    });
    if (dirty.trim()) commit += '-dirty';
  } catch {
    // not a git checkout
  }
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m);
    if (m) cpu = m[1];
  } catch {
    // not Linux
  }
  return {
    cpu,
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    commit,
  };
}

/** Runs the roofline probe built beside the addon (build/roofline). */
export function measureRoofline(threads: number): Roofline {
  const exe = path.join(packageRoot, 'build', 'roofline');
  if (!existsSync(exe)) throw new Error(`${exe} is missing: build it with npm run build:native (CMake build)`);
  const out = execFileSync(exe, ['--threads', String(threads), '--json'], { encoding: 'utf8' });
  const r = JSON.parse(out) as Roofline;
  return { threads: r.threads, readBandwidthGBs: r.readBandwidthGBs, fmaPeakGflops: r.fmaPeakGflops };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
