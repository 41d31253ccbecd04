// docs/configuration.md must describe exactly the keys the schemas accept, with the defaults the
// code applies: this test is what keeps the reference from drifting.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { z } from 'zod';
import { cloudConfigSchema, edgeConfigSchema, parseCloudConfig, parseEdgeConfig } from '../src/config/index.js';
import { leafPaths } from '../src/config/introspect.js';

const docs = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

interface Row { key: string; type: string; default: string }

/** Table rows of the section whose heading starts with `heading`. */
function rows(heading: string): Row[] {
  const start = docs.indexOf(`\n## ${heading}`);
  assert.ok(start >= 0, `docs/configuration.md has a "## ${heading}" section`);
  const end = docs.indexOf('\n## ', start + 1);
  const section = docs.slice(start, end < 0 ? undefined : end);
  const out: Row[] = [];
  for (const line of section.split('\n')) {
    const m = /^\| `([^`]+)` \| (.*?) \| (.*?) \| .* \|$/.exec(line);
    if (m) out.push({ key: m[1]!, type: m[2]!, default: m[3]! });
  }
  return out;
}

/** The value at a leaf path ("carriers[].metadata.mcc" looks in the first carrier). */
function valueAt(obj: unknown, path: string): unknown {
  let o: unknown = obj;
  for (const seg of path.split('.')) {
    const name = seg.replace(/\[\]$/, '');
    o = (o as Record<string, unknown> | undefined)?.[name];
    if (seg.endsWith('[]')) o = (o as unknown[] | undefined)?.[0];
  }
  return o;
}

/** The keys a minimal valid config must set: every one is documented as **required**. */
function checkSection(heading: string, schema: z.ZodType, minimal: unknown, parsed: unknown, required: string[]) {
  const documented = rows(heading);
  const byKey = new Map(documented.map((r) => [r.key, r]));
  const leaves = leafPaths(schema);

  test('every leaf key is documented', () => {
    assert.deepEqual(leaves.filter((k) => !byKey.has(k)), []);
  });

  test('every documented key exists', () => {
    assert.deepEqual(documented.map((r) => r.key).filter((k) => !leaves.includes(k)), []);
  });

  test('documented defaults are the defaults the code applies', () => {
    for (const key of leaves) {
      const row = byKey.get(key)!;
      if (key === 'id') {
        assert.equal(row.default, 'host name');
      } else if (required.includes(key)) {
        assert.equal(row.default, '**required**', key);
      } else if (valueAt(minimal, key) === undefined && valueAt(parsed, key) === undefined) {
        assert.equal(row.default, 'none', `${key} is optional without a default`);
      } else {
        assert.equal(valueAt(minimal, key), undefined, `${key} is not set by the minimal config`);
        assert.equal(row.default, `\`${JSON.stringify(valueAt(parsed, key))}\``, key);
      }
    }
  });
}

describe('docs/configuration.md: edge', () => {
  const minimal = {
    control: { cloud: 'c:1', tls: { ca: 'a', cert: 'b', key: 'c' } },
    carriers: [{ name: 'a', interface: 'w0' }],
    interception: { clientSubnets: ['10.0.0.0/8'] },
  };
  checkSection('Edge', edgeConfigSchema, minimal, parseEdgeConfig(minimal), [
    'control.cloud', 'control.tls.ca', 'control.tls.cert', 'control.tls.key', 'carriers[].name', 'carriers[].interface',
    'interception.clientSubnets', 'pops[].name', 'pops[].cloud', 'popSelection.destinations[].prefix', 'popSelection.destinations[].probe',
  ]);
});

describe('docs/configuration.md: cloud', () => {
  const minimal = { control: { tls: { ca: 'a', cert: 'b', key: 'c' } } };
  checkSection('Cloud', cloudConfigSchema, minimal, parseCloudConfig(minimal), ['control.tls.ca', 'control.tls.cert', 'control.tls.key']);
});
