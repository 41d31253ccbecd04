// The policy model (validation names the field) and the cloud's policy store: layering of global
// policy, per-edge override and overlays, versions that only grow, refusal of anything that would
// make an edge's policy invalid, expiry of derived overlays, and state that survives a restart.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ALL_EDGES, FilePolicyStore, PolicyValidationError, defaultPolicy, parsePolicy, parsePolicyJson } from '../src/policy/index.js';

const dir = mkdtempSync(join(tmpdir(), 'braid-policy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PolicyValidationError, String(e));
    return e.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail('expected a PolicyValidationError');
}

describe('policy model', () => {
  test('the empty policy is the built-in behaviour (S2-7 330 KB pinning, S2-11 algorithms)', () => {
    const p = defaultPolicy();
    assert.equal(p.schedule.pinBytes, 330 * 1024);
    assert.deepEqual(p.classes.algorithms, { bulk: 'rate-weighted', interactive: 'utility', realtime: 'utility', retransmit: 'utility' });
    assert.deepEqual(p.carriers, {});
  });

  test('a full policy parses', () => {
    const p = parsePolicy({
      users: [{ address: '10.0.0.5', priority: 7, privileged: true }],
      classes: { rules: [{ class: 'realtime', proto: 'udp', ports: [5004, '10000-20000'], dscp: [46], destinations: ['203.0.113.0/24'] }], algorithms: { bulk: 'utility' } },
      schedule: { alpha: 0.5, beta: 1, retransmitF: 50, pinBytes: 100_000 },
      lowLatency: { preferredLinkTypes: ['nr'], preferredMaxDelayMs: 40, services: { video: { linkTypes: ['wlan5', 'wlan24'], maxDelayMs: 30 } } },
      carriers: { 'lte-a': { tier: 'primary', latencyCutoffMs: 300 }, sat: { tier: 'backup', dataCap: { bytes: 5e9, billingDay: 15 } } },
      latency: { cutoffMs: 800 },
    });
    assert.equal(p.classes.algorithms.bulk, 'utility');
    assert.equal(p.classes.algorithms.realtime, 'utility');
    assert.deepEqual(p.carriers['sat']?.dataCap, { bytes: 5e9, billingDay: 15 });
    assert.equal(parsePolicy({ carriers: { x: { dataCap: { bytes: 1 } } } }).carriers['x']?.dataCap?.billingDay, 1);
  });

  test('every refusal names the field', () => {
    const problems = problemsOf(() => parsePolicy({
      users: [{ address: '10.0.0.500' }],
      classes: { rules: [{ class: 'fast', ports: [70000] }], algorithms: { bulk: 'fastest' } },
      schedule: { alpha: -1, pinBytes: 1.5 },
      carriers: { 'lte-a': { tier: 'gold', dataCap: { bytes: 0, billingDay: 31 } }, 'LTE A': {} },
      colour: 'blue',
    }));
    const text = problems.join('\n');
    assert.match(text, /^users\[0\]\.address: expected an IPv4 address/m);
    assert.match(text, /^classes\.rules\[0\]\.class: expected one of bulk\|interactive\|realtime, got "fast"/m);
    assert.match(text, /^classes\.rules\[0\]\.ports\[0\]: expected a port 1-65535/m);
    assert.match(text, /^classes\.algorithms\.bulk: unknown algorithm "fastest" \(known: .*rate-weighted.*\)/m);
    assert.match(text, /^schedule\.alpha: expected a number between 0 and 100, got -1/m);
    assert.match(text, /^schedule\.pinBytes: expected a whole number/m);
    assert.match(text, /^carriers\.lte-a\.tier: expected one of primary\|secondary\|backup\|never, got "gold"/m);
    assert.match(text, /^carriers\.lte-a\.dataCap\.bytes: /m);
    assert.match(text, /^carriers\.lte-a\.dataCap\.billingDay: expected a day of the month 1-28, got 31/m);
    assert.match(text, /^carriers\.LTE A: expected a carrier name/m);
    assert.match(text, /^colour: unknown key/m);
  });

  test('semantic refusals: duplicate user, a rule matching everything, no carrier left', () => {
    assert.match(problemsOf(() => parsePolicy({ users: [{ address: '10.0.0.1' }, { address: '10.0.0.1' }] })).join(), /users\[1\]\.address: user 10\.0\.0\.1 is listed twice/);
    assert.match(problemsOf(() => parsePolicy({ classes: { rules: [{ class: 'bulk' }] } })).join(), /classes\.rules\[0\]: a rule needs at least one of/);
    assert.match(problemsOf(() => parsePolicy({ carriers: { a: { tier: 'never' } } })).join(), /carriers: every listed carrier is tier "never"/);
  });

  test('JSON form: size bound and clear errors', () => {
    assert.match(problemsOf(() => parsePolicyJson('{')).join(), /not JSON/);
    assert.match(problemsOf(() => parsePolicyJson('[1]')).join(), /expected a JSON object/);
    assert.match(problemsOf(() => parsePolicyJson(`{"x":"${'a'.repeat(300_000)}"}`)).join(), /larger than 262144 bytes/);
    assert.equal(parsePolicyJson('').schedule.pinBytes, 330 * 1024);
  });
});

describe('FilePolicyStore', () => {
  test('layers: global, edge override, fleet overlays, edge overlays; versions only grow', async () => {
    const store = await FilePolicyStore.open();
    const changes: string[] = [];
    store.onChange((e) => changes.push(e));
    const v0 = store.effective('edge-1');
    assert.equal(v0.version, 0);
    await store.setGlobal({ carriers: { 'lte-a': { tier: 'primary' }, 'lte-b': { tier: 'primary' } }, schedule: { alpha: 0.3 } });
    await store.setEdgeOverride('edge-1', { schedule: { beta: 2 } });
    await store.setOverlay(ALL_EDGES, 'fleet.cell', { carriers: { 'lte-b': { latencyCutoffMs: 500 } } });
    await store.setOverlay('edge-1', 'fleet.degradation', { carriers: { 'lte-b': { tier: 'backup' } } });
    const e1 = store.effective('edge-1');
    assert.equal(e1.policy.schedule.alpha, 0.3);
    assert.equal(e1.policy.schedule.beta, 2);
    assert.deepEqual(e1.policy.carriers['lte-b'], { tier: 'backup', latencyCutoffMs: 500 });
    assert.deepEqual(e1.policy.carriers['lte-a'], { tier: 'primary' });
    assert.deepEqual(e1.sources, ['global@1', 'edge@2', 'overlay:fleet.cell@3', 'overlay:fleet.degradation@4']);
    assert.equal(e1.version, 4);
    const e2 = store.effective('edge-2');
    assert.equal(e2.policy.carriers['lte-b']?.tier, 'primary');
    assert.equal(e2.policy.schedule.beta, 0.1);
    assert.deepEqual(changes, [ALL_EDGES, 'edge-1', ALL_EDGES, 'edge-1']);
    // Removing a layer is a change too: the version still grows.
    await store.setOverlay('edge-1', 'fleet.degradation', undefined);
    const after = store.effective('edge-1');
    assert.equal(after.policy.carriers['lte-b']?.tier, 'primary');
    assert.ok(after.version > e1.version, `${after.version} > ${e1.version}`);
    assert.notEqual(after.hash, e1.hash);
    await store.close();
  });

  test('an overlay or override that makes the policy invalid is refused and nothing changes', async () => {
    const store = await FilePolicyStore.open();
    await store.setGlobal({ carriers: { 'lte-a': { tier: 'primary' } } });
    const before = store.effective('edge-1');
    await assert.rejects(store.setOverlay('edge-1', 'fleet.x', { carriers: { 'lte-a': { tier: 'never' } } }), /overlay fleet\.x for edge edge-1: carriers: every listed carrier is tier "never"/);
    await assert.rejects(store.setEdgeOverride('edge-1', { schedule: { alpha: 1000 } } as never), /schedule\.alpha: expected a number between 0 and 100/);
    await assert.rejects(store.setOverlay('bad id', 'x', {}), /is not an edge id/);
    await assert.rejects(store.setOverlay('edge-1', 'bad source', {}), /overlay source "bad source"/);
    await assert.rejects(store.setGlobal({ schedule: { pinBytes: -1 } }), /invalid global policy: schedule\.pinBytes/);
    assert.deepEqual(store.effective('edge-1'), before);
    // A global policy that would break an edge's override is refused as well.
    await store.setEdgeOverride('edge-1', { carriers: { 'lte-b': { tier: 'never' } } });
    await assert.rejects(store.setGlobal({}), /invalid policy of edge edge-1: carriers: every listed carrier is tier "never"/);
    assert.equal(store.global()?.revision, 1);
    await store.close();
  });

  test('overlays with a ttl expire with a new version and a change notification', async () => {
    let now = 1_000_000;
    const store = await FilePolicyStore.open(undefined, () => now);
    const seen: string[] = [];
    store.onChange((e) => seen.push(e));
    await store.setOverlay('edge-1', 'fleet.speed', { schedule: { beta: 0 } }, { ttlMs: 30 });
    const v = store.effective('edge-1');
    assert.equal(v.policy.schedule.beta, 0);
    now += 31;
    await new Promise((r) => setTimeout(r, 80));
    const w = store.effective('edge-1');
    assert.equal(w.policy.schedule.beta, 0.1);
    assert.ok(w.version > v.version);
    assert.deepEqual(seen, ['edge-1', 'edge-1']);
    await store.close();
  });

  test('state survives a restart (file written atomically); a corrupt file is a clear error', async () => {
    const file = join(dir, 'state', 'policy.json');
    const a = await FilePolicyStore.open(file);
    await a.setGlobal({ schedule: { pinBytes: 200_000 } });
    await a.setOverlay('edge-3', 'fleet.degradation', { carriers: { 'lte-c': { tier: 'secondary' } } });
    const before = a.effective('edge-3');
    await a.close();
    const b = await FilePolicyStore.open(file);
    assert.deepEqual(b.effective('edge-3'), before);
    await b.setOverlay('edge-3', 'fleet.degradation', undefined);
    assert.ok(b.effective('edge-3').version > before.version, 'versions continue after a restart');
    await b.close();
    assert.match(readFileSync(file, 'utf8'), /"format": "braid\.policy-store\.v1"/);
    writeFileSync(file, '{ nope');
    await assert.rejects(FilePolicyStore.open(file), /policy state file .* is not JSON/);
  });
});
