// Session ownership across cloud replicas (docs/kubernetes.md): the owner's tag in the session
// id, the replica-to-replica frame, real forwarding over loopback UDP between two forwarders,
// and the edge's carrier metadata read from its node with the fallbacks (no API, API hanging).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DropCounters, OWNER_TAG_BITS, StaticDiscovery, UdpListener, ownerTag, sessionOwnerTag, sessionOwners, silentLogger, taggedSessionId,
  withNodeCarriers, type CarrierConfig, type CloudReplica,
} from '@braid/gateway-core';
import { FrameKind, ReplicaForwarder, frameHeader, parseFrame } from '@braid/gateway-cloud';
import { until } from '../gateway-core/test/wait.js';

const replica = (address: string): CloudReplica => ({ name: address, address, dataPort: 7000, nodeName: undefined, zone: undefined, ready: true, terminating: false });

describe('owner-tagged session ids', () => {
  test('an id carries its owner\'s tag, is never 0, and names that owner only', () => {
    const rs = ['10.244.1.7', '10.244.2.9', '10.244.3.4'].map(replica);
    assert.equal(new Set(rs.map((r) => ownerTag(r.address))).size, 3, 'fixture addresses must not collide');
    let seed = 7;
    const rand = (max: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % max;
    for (const r of rs) {
      for (let i = 0; i < 200; i++) {
        const id = taggedSessionId(ownerTag(r.address), rand);
        assert.ok(id > 0 && id < 2 ** 32);
        assert.equal(sessionOwnerTag(id), ownerTag(r.address));
        assert.deepEqual(sessionOwners(id, rs).map((o) => o.address), [r.address]);
        // The owner itself never forwards to itself.
        assert.deepEqual(sessionOwners(id, rs, r.address), []);
      }
    }
    assert.ok(ownerTag('10.0.0.1') < 2 ** OWNER_TAG_BITS);
    // Tag 0 with low bits 0 would be id 0: refused, drawn again.
    let calls = 0;
    assert.equal(taggedSessionId(0, () => (calls++ === 0 ? 0 : 5)), 5);
  });
  test('a replica joining or leaving does not move an existing session', () => {
    const id = taggedSessionId(ownerTag('10.244.2.9'), () => 1234);
    const before = sessionOwners(id, ['10.244.1.7', '10.244.2.9'].map(replica));
    const after = sessionOwners(id, ['10.244.1.7', '10.244.2.9', '10.244.4.1', '10.244.5.3'].map(replica));
    assert.deepEqual(after, before);
    assert.deepEqual(sessionOwners(id, ['10.244.1.7'].map(replica)), [], 'owner gone: nobody to forward to');
  });
});

describe('replica-to-replica frames', () => {
  test('round trip, and every malformed frame is refused with its reason', () => {
    const h = frameHeader(FrameKind.ToOwner, { address: '203.0.113.7', port: 40001 });
    assert.ok(h);
    const f = parseFrame(Buffer.concat([h, Buffer.from('sealed')]));
    assert.ok(f.ok);
    assert.deepEqual({ kind: f.kind, edge: f.edge, d: f.datagram.toString() }, { kind: FrameKind.ToOwner, edge: { address: '203.0.113.7', port: 40001 }, d: 'sealed' });
    assert.equal(frameHeader(FrameKind.ToEdge, { address: '::1', port: 1 }), undefined);
    assert.equal(frameHeader(FrameKind.ToEdge, { address: '1.2.3.256', port: 1 }), undefined);
    const bad = (b: Buffer) => { const r = parseFrame(b); return r.ok ? 'ok' : r.why; };
    assert.equal(bad(h), 'short');
    assert.equal(bad(Buffer.concat([Buffer.from([0, 1]), h.subarray(2), Buffer.from('x')])), 'bad magic');
    assert.equal(bad(Buffer.concat([Buffer.from([0xbf, 9]), h.subarray(2), Buffer.from('x')])), 'bad kind');
    assert.equal(bad(Buffer.concat([h.subarray(0, 6), Buffer.from([0, 0, 1])])), 'port 0');
  });

  test('two forwarders on loopback: to the owner, back to the edge through the relay, strangers dropped', async () => {
    // Replica A is 127.0.0.1, replica B is 127.0.0.2; both forwarders listen on 0.0.0.0 of one
    // host, so they use different ports here (in a cluster every pod uses the same one).
    const dataA = await UdpListener.open('127.0.0.1', 0);
    const edge = await UdpListener.open('127.0.0.1', 0);
    const drops = new DropCounters();
    const ownerGot: { d: string; edge: string; relay: string }[] = [];
    const discovery = new StaticDiscovery([{ address: '127.0.0.1' }, { address: '127.0.0.2' }]);
    await discovery.start();
    // A is the receiving replica, B the owner; each is told the other's port.
    const b = await ReplicaForwarder.open({
      selfAddress: '127.0.0.2', port: 0, discovery, data: dataA, drops, log: silentLogger,
      deliver: (d, e, relay) => ownerGot.push({ d: d.toString(), edge: `${e.address}:${e.port}`, relay }),
    });
    const a = await ReplicaForwarder.open({
      selfAddress: '127.0.0.1', port: 0, peerPort: b.port, discovery, data: dataA, drops, log: silentLogger, deliver: () => assert.fail('A owns nothing'),
    });
    const b2 = await ReplicaForwarder.open({
      selfAddress: '127.0.0.2', port: 0, peerPort: a.port, discovery, data: dataA, drops, log: silentLogger, deliver: () => undefined,
    });
    try {
      const id = taggedSessionId(ownerTag('127.0.0.2'), () => 99);
      assert.equal(a.toOwner(id, Buffer.from('hello'), { address: '127.0.0.1', port: edge.port }), true);
      assert.equal(a.toOwner(taggedSessionId((ownerTag('127.0.0.2') + 1) % 4096, () => 1), Buffer.from('x'), { address: '127.0.0.1', port: edge.port }), false);
      await until('the packet at its owner', () => ownerGot.length === 1, 3000);
      assert.deepEqual(ownerGot[0], { d: 'hello', edge: `127.0.0.1:${edge.port}`, relay: '127.0.0.1' });
      // B answers through A: the edge receives it from A's data socket.
      const got = new Promise<{ d: string; from: number }>((resolve) => edge.onDatagram((d, from) => resolve({ d: d.toString(), from: from.port })));
      // B's answers leave through b2, B's forwarder as it knows A's port.
      const path = b2.pathVia('127.0.0.1', { address: '127.0.0.1', port: edge.port });
      assert.equal(path.send(Buffer.from('answer')), true);
      assert.deepEqual(await got, { d: 'answer', from: dataA.port });
      assert.equal(a.relayed, 1);
      assert.equal(a.forwarded, 1);
      // A frame from an address that is not a replica is dropped and counted.
      const stranger = await UdpListener.open('127.0.0.3', 0);
      stranger.sock.send(Buffer.concat([frameHeader(FrameKind.ToOwner, { address: '1.2.3.4', port: 5 }) as Buffer, Buffer.from('x')]), b.port, '127.0.0.2');
      await until('the forward-not-replica drop', () => drops.get('forward-not-replica') === 1, 3000);
      stranger.close();
      assert.equal(ownerGot.length, 1);
    } finally {
      a.close();
      b.close();
      b2.close();
      dataA.close();
      edge.close();
      discovery.stop();
    }
  });
});

describe('edge carriers from the node, with fallbacks', () => {
  const carriers: CarrierConfig[] = [{ name: 'lte-a', interface: 'wwan0', metadata: { operator: 'Old', technology: 'lte' } } as CarrierConfig];
  const started: CarrierConfig[][] = [];
  const make = (c: { carriers: CarrierConfig[] }) => ({ start: async () => { started.push(c.carriers); }, stop: async () => undefined });

  test('annotations applied when the node can be read', async () => {
    started.length = 0;
    const gw = withNodeCarriers({ carriers }, silentLogger, make, {
      nodeName: 'n1', source: { getNode: async () => ({ metadata: { annotations: { 'braid.io/carrier.lte-a.operator': 'Telekom', 'braid.io/carrier.lte-a.mcc': '262' } } }) },
    });
    await gw.start();
    assert.deepEqual(started[0]?.[0]?.metadata, { operator: 'Telekom', technology: 'lte', mcc: '262' });
  });
  test('no API (outside a cluster): edge.yaml as it is', async () => {
    started.length = 0;
    await withNodeCarriers({ carriers }, silentLogger, make, { nodeName: 'n1' }).start();
    assert.deepEqual(started[0], carriers);
  });
  test('an API that never answers does not hold the edge back', async () => {
    started.length = 0;
    const t0 = Date.now();
    await withNodeCarriers({ carriers }, silentLogger, make, { nodeName: 'n1', timeoutMs: 200, source: { getNode: () => new Promise(() => undefined) } }).start();
    assert.deepEqual(started[0], carriers);
    assert.ok(Date.now() - t0 < 2000);
  });
});

