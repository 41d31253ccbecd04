// S0-7 per-type streams used by the session, over real transports on loopback: the edge's path is
// a TransportRacer keeping both its UDP and TCP streams (keepSeveralStreams), real-time packets
// bound to stream 1 (UDP) and bulk ones to stream 2 (TCP). A real cloud-side session answers. What
// the cloud receives on each transport shows the binding: every real-time (S4) data packet came
// over UDP, every bulk one over TCP, and all of them were delivered.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { realClock } from '../src/clock.js';
import type { Path } from '../src/path/path.js';
import { UdpCarrierPath, UdpListener, UdpPeerPath } from '../src/path/udp.js';
import { StreamListener, openTcpCarrierPath } from '../src/path/stream.js';
import { TransportRacer } from '../src/racing/racer.js';
import { DEFAULT_WEIGHTS } from '../src/racing/weights.js';
import { Session, type SessionOptions } from '../src/session/session.js';
import { RateWeightedScheduler } from '../src/schedule/rate-weighted.js';
import { SessionCodec } from '../src/wire/codec.js';
import { Flags, PacketType } from '../src/wire/header.js';
import { parseEdgeConfig } from '../src/config/index.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An IPv4 packet of `proto` (6 TCP, 17 UDP) to `dport`, `len` bytes, numbered in its payload. */
function ipPacket(proto: 6 | 17, dport: number, len: number, n: number): Buffer {
  const b = Buffer.alloc(len);
  b[0] = 0x45;
  b.writeUInt16BE(len, 2);
  b[8] = 64;
  b[9] = proto;
  b.writeUInt32BE(0x0a000002, 12);
  b.writeUInt32BE(0x0a000001, 16);
  b.writeUInt16BE(40000, 20);
  b.writeUInt16BE(dport, 22);
  if (proto === 6) b[32] = 0x50;
  else b.writeUInt16BE(len - 20, 24);
  b.writeUInt32BE(n, len - 4);
  return b;
}

const RULES: SessionOptions['classRules'] = [
  { proto: 'udp', ports: [[5004, 5004]], class: 'realtime' },
  { proto: 'tcp', ports: [[80, 80]], class: 'bulk' },
];

let udp: UdpListener;
let tcp: StreamListener;
const closers: (() => void)[] = [];

before(async () => {
  udp = await UdpListener.open('127.0.0.1', 0);
  tcp = await StreamListener.open({ kind: 'tcp', host: '127.0.0.1', port: 0 });
});

after(() => {
  for (const c of closers) c();
  udp?.close();
  tcp?.close();
});

test('S0-7: real-time packets take the UDP stream, bulk ones the TCP stream, both kept open', async () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const base: Omit<SessionOptions, 'sendKey' | 'recvKey' | 'deliver'> = {
    sessionId: 77, pathNames: ['lo'], clock: realClock, scheduler: new RateWeightedScheduler(), classRules: RULES,
    keepaliveMs: 200, ackIntervalMs: 10, ackEveryPackets: 8, pathDeadMs: 300,
    reorder: { holdMs: 100, maxPackets: 8192, maxBytes: 16 << 20 }, replayWindow: 8192,
  };
  const delivered: number[] = [];
  const cloud = new Session({ ...base, sendKey: k2, recvKey: k1, deliver: (ip) => delivered.push(ip.readUInt32BE(ip.length - 4)) });
  const edge = new Session({ ...base, sendKey: k1, recvKey: k2, deliver: () => {} });
  closers.push(() => cloud.close(), () => edge.close());

  // What the cloud receives, by transport and kind of data packet (the flags are in the clear header).
  const seen = { udp: { realtime: 0, bulk: 0 }, tcp: { realtime: 0, bulk: 0 } };
  const count = (via: 'udp' | 'tcp', d: Buffer): void => {
    if (((d[0] as number) & 0x0f) !== PacketType.Data) return;
    if ((d[1] as number) & Flags.LowLatency) seen[via].realtime++;
    else seen[via].bulk++;
  };
  let peer: UdpPeerPath | undefined;
  udp.onDatagram((d, from) => {
    count('udp', d);
    cloud.receive(d, () => (peer ??= new UdpPeerPath(udp, from.address, from.port)));
  });
  tcp.onConnection((conn) => conn.onDatagram((d) => {
    count('tcp', d);
    cloud.receive(d, () => conn);
  }));

  const codec = new SessionCodec(77, k1, k2);
  const racer: TransportRacer = new TransportRacer({
    name: 'lo', clock: realClock, cascade: ['udp', 'tcp'], switchThresholdMs: 50, anomalyThresholdMs: 2000,
    weights: DEFAULT_WEIGHTS, keepSeveralStreams: true,
    open: (kind): Promise<Path> => kind === 'udp'
      ? UdpCarrierPath.open({ interface: 'lo', remoteHost: '127.0.0.1', remotePort: udp.port })
      : openTcpCarrierPath({ interface: 'lo', remoteHost: '127.0.0.1', remotePort: tcp.port, connectTimeoutMs: 1000 }),
    isAuthentic: (d) => codec.decode(d).ok,
    requestProbe: () => edge.setTransport(0, racer),
  });
  closers.push(() => racer.close());
  racer.bindType('realtime', 1);
  racer.bindType('bulk', 2);
  racer.onDatagram((d) => edge.receive(d));
  edge.setTransport(0, racer);
  racer.start();
  // Both streams connected (the cloud answers on whichever it heard last, so both get answers).
  for (let i = 0; i < 200 && racer.status().streams.filter((s) => s.state === 'connected').length < 2; i++) {
    edge.send(ipPacket(6, 80, 200, 0)); // a little traffic makes the cloud answer on each stream
    await sleep(10);
  }
  assert.deepEqual(racer.status().streams.map((s) => s.state), ['connected', 'connected'], JSON.stringify(racer.status().events));
  const before = structuredClone(seen);
  const N = 200;
  for (let n = 1; n <= N; n++) {
    edge.send(ipPacket(17, 5004, 160, 10_000 + n)); // voice-like
    edge.send(ipPacket(6, 80, 1200, 20_000 + n)); // bulk
    if (n % 20 === 0) await sleep(5);
  }
  await sleep(500);
  const rt = { udp: seen.udp.realtime - before.udp.realtime, tcp: seen.tcp.realtime - before.tcp.realtime };
  const bulk = { udp: seen.udp.bulk - before.udp.bulk, tcp: seen.tcp.bulk - before.tcp.bulk };
  assert.ok(rt.udp >= N, `real-time on UDP: ${JSON.stringify(rt)}`);
  assert.equal(rt.tcp, 0, `no real-time packet on TCP: ${JSON.stringify(rt)}`);
  assert.ok(bulk.tcp >= N, `bulk on TCP: ${JSON.stringify(bulk)}`);
  assert.equal(bulk.udp, 0, `no bulk packet on UDP: ${JSON.stringify(bulk)}`);
  for (let n = 1; n <= N; n++) {
    assert.ok(delivered.includes(10_000 + n) && delivered.includes(20_000 + n), `packet ${n} of each class delivered`);
  }
  assert.deepEqual(racer.status().bindings, { realtime: 1, bulk: 2 });
});

test('S0-7 configuration: a binding needs keepSeveralStreams and a stream of the cascade', () => {
  const edge = (racing: Record<string, unknown>) => ({
    control: { cloud: 'c.example:7443', tls: { ca: '/a', cert: '/b', key: '/c' } },
    carriers: [{ name: 'lte-a', interface: 'wwan0' }],
    interception: { clientSubnets: ['192.168.8.0/24'] },
    dataPlane: { racing },
  });
  assert.throws(() => parseEdgeConfig(edge({ typeBindings: { realtime: 1 } })), /typeBindings\.realtime: expected keepSeveralStreams: true/);
  assert.throws(() => parseEdgeConfig(edge({ cascade: ['udp', 'tcp'], keepSeveralStreams: true, typeBindings: { bulk: 3 } })), /typeBindings\.bulk: expected a stream of the cascade \(1\.\.2\), got 3/);
  const ok = parseEdgeConfig(edge({ keepSeveralStreams: true, typeBindings: { realtime: 1, bulk: 2 } }));
  assert.deepEqual(ok.dataPlane.racing.typeBindings, { realtime: 1, bulk: 2 });
});
