#!/usr/bin/env node
// run-ts-tests.mjs — runs node's own test runner (through tsx) over every *.test.ts file under the
// given folders. (Node 20's `--test` does not expand globs or find .ts files by itself.)
//
//   node scripts/run-ts-tests.mjs test/unit test/addon [-- extra node --test flags]
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const argv = process.argv.slice(2);
const split = argv.indexOf('--');
const dirs = split < 0 ? argv : argv.slice(0, split);
const extra = split < 0 ? [] : argv.slice(split + 1);

function collect(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const files = [];
for (const d of dirs) {
  if (!existsSync(d)) {
    console.error(`run-ts-tests: no folder ${d}`);
    process.exit(2);
  }
  collect(d, files);
}
if (files.length === 0) {
  console.error(`run-ts-tests: no *.test.ts files under ${dirs.join(', ')}`);
  process.exit(2);
}
const reporter = process.env.CI ? ['--test-reporter=spec'] : [];
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...reporter, ...extra, ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
