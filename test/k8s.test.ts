// gateway-core/src/k8s: replica discovery from EndpointSlices, session pinning, carrier metadata
// from node annotations, and the fallbacks when no API answers. Recorded API objects
// (test/k8s-fixtures) are replayed two ways: straight into the logic, and over HTTP by a
// loopback server speaking the Kubernetes API's list/watch/get, so the real
// @kubernetes/client-node calls are exercised too. No cluster is needed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { KubeConfig, type V1EndpointSlice, type V1EndpointSliceList, type V1Node } from '@kubernetes/client-node';
import {
  type CarrierConfig, type CloudReplica, type EndpointSliceSource, type WatchPhase, EndpointSliceDiscovery, carriersFromNodeAnnotations,
  clientNodeEndpointSliceSource, clientNodeNodeSource, createReplicaDiscovery, inCluster, pinnedDataEndpoint, readNodeCarriers,
  rendezvousOwner, replicasFromEndpointSlices,
} from '@braid/gateway-core';
import { until } from '../gateway-core/test/wait.js';

const fixture = <T>(name: string): T => JSON.parse(readFileSync(new URL(`./k8s-fixtures/${name}`, import.meta.url), 'utf8')) as T;
const LIST = fixture<V1EndpointSliceList>('endpointslices-list.json');
const EVENTS = fixture<{ type: WatchPhase; object: V1EndpointSlice }[]>('endpointslices-watch.json');
const NODE = fixture<V1Node>('node-edge.json');
const SELECTOR = 'kubernetes.io/service-name=braid-cloud-peers';

const summary = (rs: CloudReplica[]) => rs.map((r) => `${r.name.slice(-5)} ${r.address} ${r.ready ? 'ready' : r.terminating ? 'terminating' : 'not-ready'}`);

describe('replicas from EndpointSlices (recorded objects)', () => {
  test('IPv4 endpoints of every slice, readiness from conditions, data port by name, sorted', () => {
    const rs = replicasFromEndpointSlices(LIST.items);
    assert.deepEqual(summary(rs), [
      '2qvxr 10.244.1.7 ready', '9lq2n 10.244.3.4 terminating', 'h8wzt 10.244.2.9 ready', 'zz7fk 10.244.1.12 not-ready',
    ]);
    assert.ok(rs.every((r) => r.dataPort === 7000));
    assert.equal(rs[0]?.zone, 'eu-central-1a');
    assert.equal(rs[0]?.nodeName, 'node-a');
  });
  test('unknown readiness counts as ready; a duplicate address keeps its ready view', () => {
    const slice = (name: string, ready: boolean | undefined): V1EndpointSlice => ({
      addressType: 'IPv4', metadata: { name }, endpoints: [{ addresses: ['10.0.0.1'], conditions: ready === undefined ? {} : { ready }, targetRef: { name: 'p' } }],
    });
    assert.equal(replicasFromEndpointSlices([slice('a', undefined)])[0]?.ready, true);
    const both = replicasFromEndpointSlices([slice('a', false), slice('b', true)]);
    assert.equal(both.length, 1);
    assert.equal(both[0]?.ready, true);
  });
});

/** Replays the recorded list, then the recorded watch events one by one on demand. */
function replaySource(): EndpointSliceSource & { push(n?: number): void; end(err?: Error): void; lists: number } {
  let onEvent: ((p: WatchPhase, s: V1EndpointSlice) => void) | undefined;
  let onDone: ((err?: Error) => void) | undefined;
  let next = 0;
  const src = {
    lists: 0,
    list(ns: string, sel: string) {
      assert.equal(ns, 'braid');
      assert.equal(sel, SELECTOR);
      src.lists++;
      return Promise.resolve({ items: structuredClone(LIST.items), resourceVersion: LIST.metadata?.resourceVersion });
    },
    watch(_ns: string, _sel: string, rv: string | undefined, ev: (p: WatchPhase, s: V1EndpointSlice) => void, done: (err?: Error) => void) {
      assert.equal(rv, '48213');
      onEvent = ev;
      onDone = done;
      return Promise.resolve({ abort: () => { onEvent = undefined; } });
    },
    push(n = 1) {
      for (let i = 0; i < n; i++) {
        const e = EVENTS[next++];
        if (e && onEvent) onEvent(e.type, structuredClone(e.object));
      }
    },
    end(err?: Error) {
      onDone?.(err);
    },
  };
  return src;
}

describe('EndpointSliceDiscovery', () => {
  test('list, then watch: a replica going away or arriving is published at once', async () => {
    const src = replaySource();
    const d = new EndpointSliceDiscovery(src, { namespace: 'braid', service: 'braid-cloud-peers', rewatchMs: 10 });
    const changes: string[][] = [];
    d.onChange((rs) => changes.push(summary(rs)));
    await d.start();
    assert.equal(d.kind, 'endpointslices');
    assert.equal(d.replicas().filter((r) => r.ready).length, 2);
    src.push(); // h8wzt terminating
    assert.deepEqual(changes.at(-1)?.filter((s) => s.endsWith(' ready')), ['2qvxr 10.244.1.7 ready']);
    src.push(); // second slice deleted
    src.push(); // new replica r5t6y
    assert.deepEqual(summary(d.replicas()), ['2qvxr 10.244.1.7 ready', 'h8wzt 10.244.2.9 terminating', 'r5t6y 10.244.2.15 ready']);
    assert.equal(changes.length, 4);
    // The watch ending (routine: server timeout) leads to a fresh list.
    src.end(new Error('watch closed'));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(src.lists, 2);
    d.stop();
  });
});

describe('session ownership: pinned to the replica that answered Hello', () => {
  const rs = replicasFromEndpointSlices(LIST.items);
  test('the Hello hands out this replica\'s own pod address and data port', () => {
    assert.deepEqual(pinnedDataEndpoint({ podName: 'braid-cloud-6c9f7d8b5d-h8wzt', dataPort: 7000 }, rs), { host: '10.244.2.9', port: 7000 });
    assert.deepEqual(pinnedDataEndpoint({ podIp: '10.244.1.7', dataPort: 7000 }, rs), { host: '10.244.1.7', port: 7000 });
    // Not in the list yet (discovery lagging): its own POD_IP.
    assert.deepEqual(pinnedDataEndpoint({ podName: 'new', podIp: '10.244.9.9', dataPort: 7000 }, rs), { host: '10.244.9.9', port: 7000 });
    // An operator-provided per-replica public address wins.
    assert.deepEqual(pinnedDataEndpoint({ podName: 'x', dataPort: 7000, publicHost: '203.0.113.7', publicPort: 30700 }, rs), { host: '203.0.113.7', port: 30700 });
    assert.equal(pinnedDataEndpoint({ dataPort: 7000 }, []), undefined);
  });
  test('rendezvous owner: deterministic, never a replica that is not ready, and losing one moves only its sessions', () => {
    const ready = rs.filter((r) => r.ready);
    const three = [...ready, { ...ready[0] as CloudReplica, name: 'braid-cloud-6c9f7d8b5d-r5t6y', address: '10.244.2.15' }];
    const owners = new Map<number, string>();
    for (let id = 0; id < 3000; id++) {
      const o = rendezvousOwner(id, three);
      assert.ok(o && o.ready);
      assert.equal(rendezvousOwner(id, [...three].reverse())?.name, o.name, 'order does not matter');
      owners.set(id, o.name);
    }
    const counts = [...owners.values()].reduce((m, n) => m.set(n, (m.get(n) ?? 0) + 1), new Map<string, number>());
    for (const c of counts.values()) assert.ok(c > 700, `uneven split: ${[...counts.values()].join(' ')}`);
    const lost = three[1] as CloudReplica;
    const two = three.filter((r) => r !== lost);
    for (const [id, name] of owners) {
      const now = rendezvousOwner(id, two)?.name;
      if (name !== lost.name) assert.equal(now, name, `session ${id} moved though its owner stayed`);
    }
    assert.equal(rendezvousOwner(1, rs.filter((r) => !r.ready)), undefined);
  });
});

describe('edge carriers from node annotations (recorded Node)', () => {
  const carriers: CarrierConfig[] = [
    { name: 'lte-a', interface: 'wwan0', metadata: { technology: 'lte' } },
    { name: 'nr-b', interface: 'wwan1', metadata: { operator: 'Vodafone', mcc: '262', mnc: '02' } },
  ];
  test('annotations override field by field; bad ones are ignored with the reason', () => {
    const r = carriersFromNodeAnnotations(carriers, NODE.metadata?.annotations);
    assert.deepEqual(r.carriers[0], { name: 'lte-a', interface: 'wwan0', metadata: { technology: 'lte', operator: 'Telekom', mcc: '262', mnc: '01' } });
    assert.deepEqual(r.carriers[1], { name: 'nr-b', interface: 'wwan1', metadata: { operator: 'Vodafone', mcc: '262', mnc: '02', technology: 'nr' } });
    assert.equal(r.ignored.length, 3);
    assert.match(r.ignored.join('\n'), /braid\.io\/carrier\.nr-b\.mnc: expected 2-3 digits, got "2"/);
    assert.match(r.ignored.join('\n'), /braid\.io\/carrier\.sat\.technology: no carrier named "sat"/);
    assert.match(r.ignored.join('\n'), /braid\.io\/carrier\.lte-a\.apn: unknown field "apn"/);
    assert.deepEqual(carriers[0]?.metadata, { technology: 'lte' }, 'the configured carriers are not mutated');
  });
  test('no API: the configured carriers, with the reason', async () => {
    const r = await readNodeCarriers(carriers, 'cpe-berlin-017', undefined);
    assert.equal(r.from, 'config');
    assert.equal(r.reason, 'no Kubernetes API');
    assert.deepEqual(r.carriers, carriers);
  });
});

// ---- the real client-node against a loopback API server replaying the recordings ---------------

describe('@kubernetes/client-node against recorded API responses', { timeout: 20_000 }, () => {
  let server: http.Server;
  let kc: KubeConfig;
  const watchers = new Set<http.ServerResponse>();
  let forbidList = false;
  before(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const json = (code: number, body: unknown) => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
      const forbidden = (what: string) => json(403, {
        kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403,
        message: `${what} is forbidden: User "system:serviceaccount:braid:braid" cannot ${what}`,
      });
      if (url.pathname === '/apis/discovery.k8s.io/v1/namespaces/braid/endpointslices') {
        assert.equal(url.searchParams.get('labelSelector'), SELECTOR);
        if (forbidList) return forbidden('list endpointslices');
        if (url.searchParams.get('watch') === 'true') {
          assert.equal(url.searchParams.get('resourceVersion'), '48213');
          res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
          res.flushHeaders();
          watchers.add(res);
          res.on('close', () => watchers.delete(res));
          return;
        }
        return json(200, LIST);
      }
      if (url.pathname === '/api/v1/nodes/cpe-berlin-017') return json(200, NODE);
      if (url.pathname.startsWith('/api/v1/nodes/')) return forbidden('get nodes');
      json(404, { kind: 'Status', code: 404, message: 'not found' });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'replay', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: 'sa', token: 'recorded' }],
      contexts: [{ name: 'replay', cluster: 'replay', user: 'sa', namespace: 'braid' }],
      currentContext: 'replay',
    });
  });
  after(async () => {
    for (const w of watchers) w.end();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  test('list + watch through client-node: the lost replica disappears from the ready set', async () => {
    forbidList = false;
    const d = new EndpointSliceDiscovery(clientNodeEndpointSliceSource(kc), { namespace: 'braid', service: 'braid-cloud-peers' });
    await d.start();
    assert.deepEqual(summary(d.replicas()).filter((s) => s.endsWith(' ready')), ['2qvxr 10.244.1.7 ready', 'h8wzt 10.244.2.9 ready']);
    const changed = new Promise<CloudReplica[]>((resolve) => d.onChange(resolve));
    const t0 = Date.now();
    await until('the watch', () => watchers.size === 1, 3000);
    for (const w of watchers) w.write(`${JSON.stringify(EVENTS[0])}\n`);
    const now = await changed;
    assert.deepEqual(summary(now).filter((s) => s.endsWith(' ready')), ['2qvxr 10.244.1.7 ready']);
    assert.ok(Date.now() - t0 < 3000, 'seen well within the 3 s re-homing budget');
    d.stop();
  });

  test('API refuses (403): discovery falls back to DNS, then to the static list', async () => {
    forbidList = true;
    const dns = await createReplicaDiscovery({
      source: clientNodeEndpointSliceSource(kc), namespace: 'braid', service: 'braid-cloud-peers', dataPort: 7000,
      resolve: (name) => (name === 'braid-cloud-peers.braid.svc' ? Promise.resolve(['10.244.2.9', '10.244.1.7']) : Promise.reject(new Error('ENOTFOUND'))),
    });
    assert.equal(dns.kind, 'dns');
    assert.deepEqual(dns.replicas().map((r) => r.address), ['10.244.1.7', '10.244.2.9']);
    dns.stop();
    const fixed = await createReplicaDiscovery({
      source: clientNodeEndpointSliceSource(kc), namespace: 'braid', service: 'braid-cloud-peers',
      resolve: () => Promise.reject(new Error('ENOTFOUND')), staticReplicas: [{ address: '198.51.100.7', dataPort: 7000 }],
    });
    assert.equal(fixed.kind, 'static');
    assert.deepEqual(fixed.replicas().map((r) => r.address), ['198.51.100.7']);
    fixed.stop();
    forbidList = false;
  });

  test('no API reachable at all: static list, no exception', async () => {
    const dead = new KubeConfig();
    dead.loadFromOptions({
      clusters: [{ name: 'dead', server: 'http://127.0.0.1:1', skipTLSVerify: true }], users: [{ name: 'u' }],
      contexts: [{ name: 'c', cluster: 'dead', user: 'u' }], currentContext: 'c',
    });
    const d = await createReplicaDiscovery({
      source: clientNodeEndpointSliceSource(dead), namespace: 'braid', service: 'svc', resolve: () => Promise.reject(new Error('ENOTFOUND')),
    });
    assert.equal(d.kind, 'static');
    assert.deepEqual(d.replicas(), []);
    assert.equal(inCluster({}), false);
  });

  test('edge reads its node through client-node; a 403 keeps edge.yaml\'s metadata', async () => {
    const carriers: CarrierConfig[] = [{ name: 'lte-a', interface: 'wwan0' }];
    const ok = await readNodeCarriers(carriers, 'cpe-berlin-017', clientNodeNodeSource(kc));
    assert.equal(ok.from, 'node');
    assert.deepEqual(ok.carriers[0]?.metadata, { operator: 'Telekom', mcc: '262', mnc: '01' });
    const refused = await readNodeCarriers(carriers, 'other-node', clientNodeNodeSource(kc));
    assert.equal(refused.from, 'config');
    assert.match(refused.reason ?? '', /403/);
    assert.deepEqual(refused.carriers, carriers);
  });
});

