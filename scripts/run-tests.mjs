#!/usr/bin/env node
// One test runner for the whole repository: node's built-in runner, TypeScript loaded by tsx
// straight from source (the "source" export condition), test files run one at a time so that
// the network-namespace tests do not compete for the two cores.
//
//   npm test                 every test
//   npm test -- --unit       only tests that need neither root nor network namespaces
//   npm test -- FILE...      just these files
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const explicit = args.filter((a) => !a.startsWith('--'));

function find(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

let files = explicit.length > 0 ? explicit : ['gateway-core', 'gateway-edge', 'gateway-cloud', 'test', 'bench']
  .flatMap((d) => { try { return find(join(root, d), []); } catch { return []; } })
  .sort();
// Integration tests (real namespaces, real processes) live under test/ and are named *.it.test.ts.
if (unitOnly) files = files.filter((f) => !f.endsWith('.it.test.ts'));
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
const r = spawnSync(process.execPath, [
  '--conditions=source', '--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files,
], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
