// S2-13 multi-PoP selection (gateway-core/src/pop): the choice with its hysteresis, the cloud's
// TCP connect-time prober (fake clock and connect, then real loopback sockets), PopService over
// real mutual TLS, and the edge's runner with stand-in gateways and a recording `ip`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseEdgeConfig } from '../src/config/index.js';
import { startControlServer } from '../src/control/index.js';
import type { ControlServer, TlsFiles } from '../src/control/index.js';
import { silentLogger } from '../src/log.js';
import {
  DestinationProber, MultiPopEdge, PopClient, choosePop, parseTarget, popEdgeConfig, popService, tcpConnectTime, type PopMeasurement, type TargetDelay,
} from '../src/pop/index.js';

const HYST = { hysteresisPct: 10, hysteresisMs: 2 };
const m = (name: string, edgeRttMs: number | undefined, dest: Record<string, number>): PopMeasurement => ({ name, edgeRttMs, destRttMs: new Map(Object.entries(dest)) });

describe('choosePop', () => {
  const T = '10.0.0.1:80';
  test('the least delay(edge-PoP) + delay(PoP-destination), not the nearest PoP alone', () => {
    // a is nearer the edge, b much nearer the destination.
    const c = choosePop(T, [m('a', 5, { [T]: 80 }), m('b', 20, { [T]: 10 })], undefined, HYST);
    assert.equal(c.pop, 'b');
    assert.deepEqual(c.totals, { a: 85, b: 30 });
  });
  test('kept within the hysteresis, moved beyond it', () => {
    assert.equal(choosePop(T, [m('a', 10, { [T]: 40 }), m('b', 10, { [T]: 36 })], 'a', HYST).pop, 'a', '4 ms < 10 % of 50');
    assert.equal(choosePop(T, [m('a', 10, { [T]: 40 }), m('b', 10, { [T]: 30 })], 'a', HYST).pop, 'b', '10 ms > 10 % of 50');
    assert.equal(choosePop(T, [m('a', 1, { [T]: 1 }), m('b', 0.5, { [T]: 0.4 })], 'a', HYST).pop, 'a', 'under the 2 ms floor');
  });
  test('a PoP without a measurement is never chosen; the current one without one is left', () => {
    assert.equal(choosePop(T, [m('a', undefined, { [T]: 1 }), m('b', 30, { [T]: 30 })], undefined, HYST).pop, 'b');
    assert.equal(choosePop(T, [m('a', 10, {}), m('b', 30, { [T]: 30 })], 'a', HYST).pop, 'b');
    const none = choosePop(T, [m('a', undefined, {}), m('b', 5, {})], 'a', HYST);
    assert.equal(none.pop, 'a');
    assert.match(none.reason, /no measurements/);
  });
});

describe('DestinationProber', () => {
  test('median of the last three samples; an error forgets the samples; bad targets are refused with a reason', async () => {
    const answers: ({ rttMs: number } | { error: string })[] = [{ rttMs: 10 }, { rttMs: 50 }, { rttMs: 12 }, { rttMs: 11 }, { error: 'EHOSTUNREACH' }, { rttMs: 30 }];
    let now = 1000;
    const p = new DestinationProber({ connect: async () => answers.shift() ?? { error: 'none left' }, now: () => now, intervalMs: 1_000_000 });
    const first = await p.measure(['10.0.0.1:80', 'example.com:80', '10.0.0.1:0']);
    assert.deepEqual(first.map((d) => [d.rttMs, d.error]), [[10, undefined], [undefined, 'not an IPv4 literal and port'], [undefined, 'not an IPv4 literal and port']]);
    const tick = async () => { (p as unknown as { tick(): void }).tick(); await new Promise((r) => setImmediate(r)); };
    await tick(); // 10, 50
    assert.equal((await p.measure(['10.0.0.1:80']))[0]?.rttMs, 50, 'median of two is the upper one');
    await tick(); // 10, 50, 12
    assert.equal((await p.measure(['10.0.0.1:80']))[0]?.rttMs, 12);
    await tick(); // 50, 12, 11
    assert.equal((await p.measure(['10.0.0.1:80']))[0]?.rttMs, 12);
    await tick(); // unreachable
    assert.deepEqual((await p.measure(['10.0.0.1:80']))[0], { target: '10.0.0.1:80', rttMs: undefined, error: 'EHOSTUNREACH', ageMs: 0 });
    // Not asked for a minute: forgotten at the next tick.
    now += 61_000;
    await tick();
    assert.equal((p as unknown as { entries: Map<string, unknown> }).entries.size, 0);
  });
  test('parseTarget', () => {
    assert.deepEqual(parseTarget('198.51.100.10:443'), { host: '198.51.100.10', port: 443 });
    for (const bad of ['198.51.100.10', '256.1.1.1:80', '1.1.1.1:70000', 'host:80', ' 1.1.1.1:80']) assert.equal(parseTarget(bad), undefined, bad);
  });
  test('tcpConnectTime on loopback: a listener, and a closed port (the refusal is a round trip too)', async () => {
    const srv = net.createServer((c) => c.destroy()).listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const open = await tcpConnectTime('127.0.0.1', port, 1000);
      assert.ok('rttMs' in open && open.rttMs >= 0 && open.rttMs < 1000, JSON.stringify(open));
    } finally {
      srv.close();
    }
    const closed = await tcpConnectTime('127.0.0.1', port, 1000);
    assert.ok('rttMs' in closed, `a refused connection is measured: ${JSON.stringify(closed)}`);
  });
});

describe('PopService over mutual TLS', () => {
  let dir = '';
  let server: ControlServer | undefined;
  const prober = new DestinationProber();
  const files = (name: 'edge' | 'cloud' | 'rogue-edge', ca = 'ca'): TlsFiles => ({ ca: join(dir, `${ca}.pem`), cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) });
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'braid-pop-'));
    execFileSync('bash', [new URL('../../scripts/gen-dev-certs.sh', import.meta.url).pathname, dir, '--cloud-san', 'DNS:braid-cloud,IP:127.0.0.1']);
    server = await startControlServer({ listen: '127.0.0.1:0', tls: files('cloud'), logger: silentLogger, onHello: () => Promise.reject(new Error('not used')), services: [popService(prober)] });
  });
  after(async () => {
    await server?.close();
    prober.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  test('an edge gets the PoP\'s delays, by target; a stranger certificate is refused; too many targets are refused', async () => {
    const srv = net.createServer((c) => c.destroy()).listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const port = (srv.address() as net.AddressInfo).port;
    const client = new PopClient({ target: `127.0.0.1:${server?.port}`, tls: files('edge'), serverName: 'braid-cloud' });
    try {
      const ds = await client.measure([`127.0.0.1:${port}`, 'not-a-target']);
      assert.equal(ds.length, 2);
      assert.ok(ds[0]?.rttMs !== undefined && ds[0].rttMs > 0 && ds[0].rttMs < 1000, JSON.stringify(ds[0]));
      assert.equal(ds[1]?.rttMs, undefined);
      assert.equal(ds[1]?.error, 'not an IPv4 literal and port');
      await assert.rejects(client.measure(Array.from({ length: 65 }, (_, i) => `127.0.0.1:${i + 1}`)), /at most 64 targets/);
    } finally {
      client.close();
      srv.close();
    }
    const rogue = new PopClient({ target: `127.0.0.1:${server?.port}`, tls: { ...files('rogue-edge'), ca: join(dir, 'ca.pem') }, serverName: 'braid-cloud', deadlineMs: 2000 });
    try {
      await assert.rejects(rogue.measure(['127.0.0.1:1']));
    } finally {
      rogue.close();
    }
  });
});

describe('MultiPopEdge (stand-in gateways, recorded ip commands)', () => {
  const cfg = parseEdgeConfig({
    control: { cloud: 'unused:1', tls: { ca: 'a', cert: 'b', key: 'c' } },
    carriers: [{ name: 'c0', interface: 'wan0' }],
    interception: { clientSubnets: ['10.1.0.0/24'], bypassDestinations: ['10.9.0.0/16'] },
    pops: [{ name: 'near', cloud: '10.2.0.1:7443' }, { name: 'far', cloud: '10.3.0.1:7443', serverName: 'far-cloud' }],
    popSelection: { destinations: [{ prefix: '10.78.1.0/24', probe: '10.78.1.1:80' }, { prefix: '10.78.2.0/24', probe: '10.78.2.1:80' }], intervalMs: 200 },
  });

  test('per-PoP configuration: its cloud, device, table, rule priorities; only the first serves admin', () => {
    const a = popEdgeConfig(cfg, 0);
    const b = popEdgeConfig(cfg, 1);
    assert.deepEqual([a.control.cloud, a.tunnel.device, a.interception.routeTable, a.interception.rulePriority], ['10.2.0.1:7443', 'braid0p0', 7502, 7502]);
    assert.deepEqual([b.control.cloud, b.control.serverName, b.tunnel.device, b.interception.routeTable, b.interception.rulePriority], ['10.3.0.1:7443', 'far-cloud', 'braid0p1', 7503, 7504]);
    assert.deepEqual([a.interception.multipathDestinations, b.interception.bypassDestinations], [[], []]);
    assert.equal(a.admin.listen, cfg.admin.listen);
    assert.equal(b.admin.listen, '');
  });

  test('each destination through its nearest PoP; a switch adds the new rule before deleting the old; stop removes them', async () => {
    const ipCalls: string[] = [];
    const rules = new Set<string>();
    const ip = async (...a: string[]) => {
      ipCalls.push(a.join(' '));
      if (a[1] === 'add') rules.add(a.slice(2).join(' '));
      else if (a[1] === 'del' && a.length > 4) { if (!rules.delete(a.slice(2).join(' '))) throw new Error('no such rule'); }
      else if (a[1] === 'del') {
        const hit = [...rules].find((r) => r.endsWith(`priority ${a[3]}`));
        if (!hit) throw new Error('none');
        rules.delete(hit);
      }
    };
    // PoP-destination delays the stand-in PoPs report; changed mid-test.
    const delays: Record<string, Record<string, number>> = { near: { '10.78.1.1:80': 5, '10.78.2.1:80': 60 }, far: { '10.78.1.1:80': 60, '10.78.2.1:80': 5 } };
    const gw = (rtt: number) => ({ start: async () => undefined, stop: async () => undefined, status: () => ({ sessionId: 1, paths: [{ state: 'up', rttMs: rtt }] }) });
    const edge = new MultiPopEdge(cfg, silentLogger, (_c, pop) => gw(pop === 'near' ? 10 : 12), {
      ip,
      client: (pop) => ({ measure: async (ts: readonly string[]): Promise<TargetDelay[]> => ts.map((t) => ({ target: t, rttMs: delays[pop.name]?.[t], error: undefined, ageMs: 0 })), close: () => undefined }),
    });
    await edge.start();
    try {
      const choice = () => Object.fromEntries(edge.status().destinations.map((d) => [d.prefix, d.pop]));
      assert.deepEqual(choice(), { '10.78.1.0/24': 'near', '10.78.2.0/24': 'far' });
      assert.deepEqual(edge.status().destinations[0]?.totals, { near: 15, far: 72 });
      assert.ok(rules.has('from 10.1.0.0/24 to 10.9.0.0/16 lookup main priority 7499'), 'bypass first');
      assert.ok(rules.has('from 10.1.0.0/24 to 10.78.1.0/24 lookup 7502 priority 7500'));
      assert.ok(rules.has('from 10.1.0.0/24 to 10.78.2.0/24 lookup 7503 priority 7500'));
      // The near PoP's way to the first destination gets long: it moves, add before delete.
      delays.near!['10.78.1.1:80'] = 80;
      const before = ipCalls.length;
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(choice(), { '10.78.1.0/24': 'far', '10.78.2.0/24': 'far' });
      const moves = ipCalls.slice(before).filter((c) => c.includes('10.78.1.0/24'));
      assert.deepEqual(moves, [
        'rule add from 10.1.0.0/24 to 10.78.1.0/24 lookup 7503 priority 7500',
        'rule del from 10.1.0.0/24 to 10.78.1.0/24 lookup 7502 priority 7500',
      ]);
      assert.equal(edge.status().destinations[0]?.switches, 1);
    } finally {
      await edge.stop();
    }
    assert.deepEqual([...rules], [], 'stop removed every rule it installed');
  });
});
