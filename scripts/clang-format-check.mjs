#!/usr/bin/env node
// clang-format-check.mjs — fails when a C++/CUDA file differs from .clang-format's style.
//   node scripts/clang-format-check.mjs          check (what `npm run lint` runs)
//   node scripts/clang-format-check.mjs --fix    rewrite the files in place
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const fix = process.argv.includes('--fix');
const roots = ['native', 'test/native', 'bench/native'];
const exts = ['.h', '.cpp', '.cu', '.cuh'];
const files = [];
const walk = (d) => {
  for (const n of readdirSync(d)) {
    const p = join(d, n);
    if (statSync(p).isDirectory()) walk(p);
    else if (exts.some((e) => n.endsWith(e))) files.push(p);
  }
};
for (const r of roots) {
  try {
    walk(r);
  } catch {
    // a root that does not exist yet has nothing to check
  }
}
const probe = spawnSync('clang-format', ['--version'], { encoding: 'utf8' });
if (probe.error) {
  console.error('clang-format-check: clang-format is not installed (Debian: apt-get install clang-format)');
  process.exit(1);
}
const args = fix ? ['-i', ...files] : ['--dry-run', '--Werror', ...files];
const r = spawnSync('clang-format', args, { stdio: 'inherit' });
if (r.status === 0 && !fix) console.log(`clang-format-check: ${files.length} files formatted correctly`);
process.exit(r.status ?? 1);
