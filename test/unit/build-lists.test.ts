/**
 * build-lists.test.ts — the native source lists cannot drift: native/sources.json is the one list,
 * CMakeLists.txt and binding.gyp both read it, and it names exactly the sources in the tree.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const lists = JSON.parse(readFileSync(path.join(root, 'native', 'sources.json'), 'utf8')) as Record<string, string[]>;

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(path.join(root, dir))) {
    const rel = `${dir}/${name}`;
    if (statSync(path.join(root, rel)).isDirectory()) walk(rel, out);
    else out.push(rel);
  }
  return out;
}

it('every listed source exists', () => {
  for (const [key, files] of Object.entries(lists)) {
    if (key === '//') continue;
    for (const f of files) assert.ok(existsSync(path.join(root, f)), `${f} (in sources.json "${key}") does not exist`);
  }
});

it('every source in native/ is listed exactly once, in the right list', () => {
  const tree = walk('native').filter((f) => f.endsWith('.cpp') || f.endsWith('.cu'));
  const listed = [...lists.core, ...lists.cuda, ...lists.addon];
  assert.equal(new Set(listed).size, listed.length, 'a source is listed twice');
  assert.deepEqual([...tree].sort(), [...listed].sort(), 'sources.json and the files under native/ differ');
  for (const f of lists.cuda) assert.ok(f.endsWith('.cu') || f.startsWith('native/backend/cuda/'), `${f} is not CUDA`);
  for (const f of lists.addon) assert.ok(f.startsWith('native/binding/'), `${f} is not a binding source`);
  for (const f of lists.core) assert.ok(!f.startsWith('native/binding/') && !f.endsWith('.cu'), `${f} is not core`);
});

it('CMakeLists.txt and binding.gyp read their lists from sources.json', () => {
  const cmake = readFileSync(path.join(root, 'CMakeLists.txt'), 'utf8');
  assert.match(cmake, /native\/sources\.json/);
  for (const key of ['core', 'cuda', 'addon']) assert.match(cmake, new RegExp(`motif_read_list\\(${key} `));
  assert.doesNotMatch(cmake, /(?<![\w/])native\/[\w/-]+\.(cpp|cu)\b/, 'CMakeLists.txt names a native source directly');
  const gyp = readFileSync(path.join(root, 'binding.gyp'), 'utf8');
  assert.match(gyp, /require\('\.\/native\/sources\.json'\)/);
  assert.match(gyp, /s\.core\.concat\(s\.addon\)/);
  assert.doesNotMatch(gyp, /"native\/[\w/-]+\.(cpp|cu)"/, 'binding.gyp names a native source directly');
});
