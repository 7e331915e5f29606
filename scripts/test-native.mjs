#!/usr/bin/env node
// test-native.mjs — runs the C++ tests (ctest) of the CMake build in build/ (made by `npm install`
// or `npm run build:native`). They need no Node; this script only finds and runs them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = process.env.MOTIF_BUILD_DIR ?? join(root, 'build');
if (!existsSync(join(buildDir, 'CTestTestfile.cmake'))) {
  console.error(
    `test-native: no CMake test build in ${buildDir}.\n` +
      '  Build it with `npm run build:native` (needs CMake), or without Node:\n' +
      '  cmake -S . -B build-native && cmake --build build-native -j && MOTIF_BUILD_DIR=build-native npm run test:native',
  );
  process.exit(1);
}
const r = spawnSync('ctest', ['--test-dir', buildDir, '--output-on-failure', ...process.argv.slice(2)], {
  stdio: 'inherit',
});
if (r.error) {
  console.error(`test-native: could not run ctest: ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
