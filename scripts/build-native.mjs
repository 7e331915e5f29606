#!/usr/bin/env node
// build-native.mjs — builds the native addon: `npm install` runs it, and so do the build:* scripts.
//
// Without --force it does nothing when a usable addon already exists (a prebuild in prebuilds/
// or an earlier build in build/Release). Otherwise it builds with cmake-js (CMakeLists.txt, the
// canonical build, which also compiles the CUDA backend when nvcc is found); when CMake is not
// installed it falls back to node-gyp with binding.gyp (CPU backend only).
//
//   node scripts/build-native.mjs [--force] [--cuda=AUTO|ON|OFF] [--debug] [--sanitize]
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const force = args.includes('--force');
const debug = args.includes('--debug');
const sanitize = args.includes('--sanitize');
const cudaArg = args.find((a) => a.startsWith('--cuda='));
const cuda = (cudaArg ? cudaArg.slice('--cuda='.length) : (process.env.MOTIF_CUDA ?? 'AUTO')).toUpperCase();
if (!['AUTO', 'ON', 'OFF'].includes(cuda)) {
  console.error(`motif-native: --cuda must be AUTO, ON or OFF, got ${cuda}`);
  process.exit(2);
}

function addonExists() {
  try {
    require('node-gyp-build').path(root);
    return true;
  } catch {
    return false;
  }
}

function run(cmd, cmdArgs) {
  console.error(`motif-native: ${cmd} ${cmdArgs.join(' ')}`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env: process.env });
  if (r.error) return { ok: false, missing: r.error.code === 'ENOENT', error: r.error };
  return { ok: r.status === 0, missing: false };
}

function haveCmake() {
  const r = spawnSync('cmake', ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

if (!force && addonExists()) {
  console.error('motif-native: native addon already built (use npm run build:native to rebuild)');
  process.exit(0);
}

if (haveCmake()) {
  const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  const parallel = String(Math.max(1, Math.min(8, (await import('node:os')).availableParallelism())));
  const cmakeArgs = [cmakeJs, 'compile', '--parallel', parallel, `--CDMOTIF_CUDA=${cuda}`];
  if (debug) cmakeArgs.push('--debug');
  if (sanitize) cmakeArgs.push('--CDMOTIF_SANITIZE=ON');
  if (process.env.MOTIF_PORTABLE === '1') cmakeArgs.push('--CDMOTIF_NATIVE_ARCH=OFF');
  const r = run(process.execPath, cmakeArgs);
  if (!r.ok) {
    console.error(
      'motif-native: the native build failed (see the compiler output above).\n' +
        '  Needs: CMake >= 3.18 and a C++17 compiler (g++ >= 9 or clang >= 10); for CUDA, the CUDA toolkit.\n' +
        '  Retry with: npm run build:native   (CPU only: MOTIF_CUDA=OFF npm run build:native)',
    );
    process.exit(1);
  }
  process.exit(0);
}

// No CMake: node-gyp with binding.gyp builds the CPU-only addon.
console.error('motif-native: CMake not found; building the CPU-only addon with node-gyp (binding.gyp)');
const nodeGyp = process.env.npm_config_node_gyp;
const r = nodeGyp ? run(process.execPath, [nodeGyp, 'rebuild']) : run('node-gyp', ['rebuild']);
if (!r.ok) {
  console.error(
    'motif-native: could not build the native addon.\n' +
      '  Install CMake >= 3.18 and a C++17 compiler, then run: npm run build:native',
  );
  process.exit(1);
}
