// S1 rendezvous over real parts on loopback: the cloud's RendezvousService on a real mTLS
// control-plane server, edges with certificates from scripts/gen-dev-certs.sh (edge-a, edge-b,
// edge-c under one CA), real TCP between the peers. Forward first; reverse when the forward dial
// is blocked; the forward/reverse race ends in one connection; stale and forged intents and
// dial-backs are refused; identities come from certificates only; spans are recorded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { randomBytes, createHmac } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tracing } from '@opentelemetry/sdk-node';
import { startControlServer, ControlError, type ControlServer, type TlsFiles } from '../src/control/index.js';
import { createRendezvousService, RendezvousClient, RendezvousPeer, type IntentMsg, type PeerLink, type RendezvousServiceHandle } from '../src/rendezvous/index.js';
import { FrameDecoder, frame } from '../src/path/framing.js';
import { poll, sleep, until } from './wait.js';

const SCRIPT = new URL('../../scripts/gen-dev-certs.sh', import.meta.url).pathname;
const exporter = new tracing.InMemorySpanExporter();
const tracer = new tracing.BasicTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] }).getTracer('test');

let dir = '';
let server: ControlServer;
let svc: RendezvousServiceHandle;
let target = '';
const clients: RendezvousClient[] = [];
const peers: RendezvousPeer[] = [];

const files = (name: string): TlsFiles => ({ ca: join(dir, 'ca.pem'), cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) });

async function client(name: string): Promise<RendezvousClient> {
  const c = await RendezvousClient.open({ target, tls: files(name), serverName: 'braid-cloud', tracer });
  clients.push(c);
  return c;
}

async function peer(name: string, listen: boolean): Promise<RendezvousPeer> {
  const p = new RendezvousPeer({
    id: name, rendezvous: await client(name), bindHost: '127.0.0.1', advertiseHost: '127.0.0.1', listenPort: listen ? 0 : undefined,
    learnWaitMs: 500, handshakeTimeoutMs: 2000, tracer,
  });
  await p.start();
  peers.push(p);
  return p;
}


/** A datagram each way, compared byte for byte. */
async function exchange(a: PeerLink, b: PeerLink): Promise<void> {
  const ab = randomBytes(1200);
  const ba = randomBytes(700);
  const gotB = new Promise<Buffer>((r) => b.onDatagram(r));
  const gotA = new Promise<Buffer>((r) => a.onDatagram(r));
  a.send(ab);
  b.send(ba);
  assert.deepEqual(await gotB, ab);
  assert.deepEqual(await gotA, ba);
}

/** A port nothing listens on: the forward dial is refused at once, as a firewall's reject would. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A raw dialer speaking the handshake by hand (what an attacker on the LAN could send). */
async function rawHello(port: number, hello: object, secret?: Buffer): Promise<{ first: Record<string, unknown>; second?: Record<string, unknown> }> {
  const sock = net.connect({ host: '127.0.0.1', port });
  const msgs: Record<string, unknown>[] = [];
  const dec = new FrameDecoder((f) => msgs.push(JSON.parse(f.toString()) as Record<string, unknown>));
  sock.on('data', (c: Buffer) => dec.push(c));
  await new Promise<void>((r, j) => { sock.once('connect', () => r()); sock.once('error', j); });
  sock.write(frame(Buffer.from(JSON.stringify(hello))));
  const end = Date.now() + 3000;
  await poll(() => msgs.length > 0, end - Date.now(), 10);
  const first = msgs[0] ?? {};
  if (first['t'] === 'auth') {
    const h = hello as { intent: string; mode: string; nonce: string };
    const key = secret ?? randomBytes(32);
    sock.write(frame(Buffer.from(JSON.stringify({ t: 'auth', proof: createHmac('sha256', key).update(`dialer|${h.intent}|${h.mode}|${h.nonce}|${String(first['nonce'])}`).digest('hex') }))));
    await poll(() => msgs.length >= 2, end - Date.now(), 10);
  }
  sock.destroy();
  return { first, ...(msgs[1] ? { second: msgs[1] } : {}) };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'braid-rendezvous-'));
  for (const id of ['edge-a', 'edge-b', 'edge-c']) {
    execFileSync('bash', [SCRIPT, dir, '--edge-id', id, '--cloud-san', 'DNS:braid-cloud,IP:127.0.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    copyFileSync(join(dir, 'edge.pem'), join(dir, `${id}.pem`));
    copyFileSync(join(dir, 'edge.key'), join(dir, `${id}.key`));
    unlinkSync(join(dir, 'edge.key')); // a fresh key for the next identity
  }
  svc = createRendezvousService({ tracer });
  server = await startControlServer({
    listen: '127.0.0.1:0', tls: files('cloud'), services: [svc.service],
    onHello: () => Promise.reject(new ControlError(12, 'no sessions in this test')),
  });
  target = `127.0.0.1:${server.port}`;
});

after(async () => {
  for (const p of peers) p.close();
  for (const c of clients) c.close();
  svc?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('forward first: the direct dial wins, one connection, the intent is resolved forward', async () => {
  const b = await peer('edge-b', true);
  const a = await peer('edge-a', false);
  const atB: PeerLink[] = [];
  b.onLink((l) => atB.push(l));
  const link = await a.connect('edge-b', { host: '127.0.0.1', port: b.port }, { reverseAfterMs: 2000, ttlMs: 10_000 });
  assert.equal(link.direction, 'forward');
  await until('the target has its link', () => atB.length === 1);
  assert.equal(atB[0]!.peerId, 'edge-a', 'the target knows who connected (from the intent, not from the dialer)');
  await exchange(link, atB[0]!);
  await until('the intent is resolved at the cloud', () => (svc.stats.resolved['forward'] ?? 0) === 1);
  assert.equal(svc.intents().length, 0);
  assert.equal(b.stats.dialBacks, 0, 'no dial-back once the forward connection is up');
  link.close();
  a.close();
  b.close();
});

test('forward blocked: the target dials back through the rendezvous; data flows (S1-4, S1-5)', async () => {
  const b = await peer('edge-b', true);
  const a = await peer('edge-a', false);
  const atB: PeerLink[] = [];
  b.onLink((l) => atB.push(l));
  const t0 = Date.now();
  const link = await a.connect('edge-b', { host: '127.0.0.1', port: await closedPort() }, { reverseAfterMs: 300, ttlMs: 10_000 });
  assert.equal(link.direction, 'reverse');
  assert.ok(Date.now() - t0 >= 280, 'the target waited the window before dialling back');
  await until('the target has its link', () => atB.length === 1);
  assert.equal(atB[0]!.direction, 'reverse');
  await exchange(link, atB[0]!);
  assert.equal(b.stats.dialBacks, 1);
  await until('the intent is resolved reverse', () => (svc.stats.resolved['reverse'] ?? 0) === 1);
  link.close();
  a.close();
  b.close();
});

test('a late forward success racing a dial-back ends in one connection on both sides', async () => {
  const b = await peer('edge-b', true);
  const a = await peer('edge-a', false);
  // The forward dial goes through a relay that holds the connection 400 ms before connecting it
  // on: the dial-back (window 0) is selected first, the forward one arrives authenticated later.
  const relay = net.createServer((s) => {
    s.pause();
    setTimeout(() => {
      const up = net.connect({ host: '127.0.0.1', port: b.port }, () => { s.pipe(up); up.pipe(s); s.resume(); });
      up.on('error', () => s.destroy());
      s.on('error', () => up.destroy());
    }, 400);
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const atB: PeerLink[] = [];
  b.onLink((l) => atB.push(l));
  const link = await a.connect('edge-b', { host: '127.0.0.1', port: (relay.address() as net.AddressInfo).port }, { reverseAfterMs: 0, ttlMs: 10_000 });
  assert.equal(link.direction, 'reverse');
  // Let the slow forward dial finish its handshake and be turned away (or refused as stale).
  await sleep(1200);
  assert.equal(atB.length, 1, 'exactly one link at the target');
  assert.equal(a.stats.forward + a.stats.reverse, 1, 'exactly one link selected by the initiator');
  assert.ok(a.stats.superseded + b.stats.superseded + b.stats.refused.stale >= 1, `the forward connection was turned away: ${JSON.stringify({ a: a.stats, b: b.stats })}`);
  await exchange(link, atB[0]!);
  link.close();
  relay.close();
  a.close();
  b.close();
});

test('stale intents are refused: expired at the target, gone at the cloud', async () => {
  const b = await peer('edge-b', true);
  const ca = await client('edge-a');
  const intent = await ca.register({ targetId: 'edge-b', listener: { host: '127.0.0.1', port: 9 }, ttlMs: 1000, reverseAfterMs: 1000 });
  await sleep(1300);
  // A forward dial that proves the (real) secret of the expired intent.
  const nonce = randomBytes(16).toString('hex');
  const r = await rawHello(b.port, { t: 'hello', v: 1, intent: intent.intentId, from: 'edge-a', mode: 'forward', nonce }, intent.secret);
  assert.deepEqual(r.first, { t: 'refused', why: 'stale' });
  assert.equal(b.stats.refused.stale, 1);
  assert.equal(b.stats.dialBacks, 0, 'the target did not dial back an expired intent');
  // The cloud dropped it: nobody can resolve it, a new watcher is not told about it.
  await assert.rejects(ca.resolve(intent.intentId, 'INTENT_OUTCOME_CANCELLED'), (e: ControlError) => e.code === 5);
  const seen: IntentMsg[] = [];
  const stop = (await client('edge-b')).watch((i) => seen.push(i));
  await sleep(300);
  stop();
  assert.ok(!seen.some((i) => i.intentId === intent.intentId));
  assert.ok(svc.stats.expired >= 1);
  b.close();
});

test('forged intents are refused: bad proof, wrong peer, unknown id, impostor listener; identities are certificates', async () => {
  const b = await peer('edge-b', true);
  const ca = await client('edge-a');
  const intent = await ca.register({ targetId: 'edge-b', listener: { host: '127.0.0.1', port: 9 }, ttlMs: 10_000, reverseAfterMs: 10_000 });
  await until('the target learned the intent', () => svc.stats.delivered > 0);
  const hello = (over: object) => ({ t: 'hello', v: 1, intent: intent.intentId, from: 'edge-a', mode: 'forward', nonce: randomBytes(16).toString('hex'), ...over });
  // 1. The right intent id without its secret.
  assert.deepEqual((await rawHello(b.port, hello({}))).second, { t: 'refused', why: 'forged' });
  // 2. Claiming to be someone the intent is not from.
  assert.deepEqual((await rawHello(b.port, hello({ from: 'edge-c' }), intent.secret)).first, { t: 'refused', why: 'forged' });
  // 3. An intent nobody registered.
  assert.deepEqual((await rawHello(b.port, hello({ intent: randomBytes(16).toString('hex') }))).first, { t: 'refused', why: 'unknown' });
  // 4. Garbage.
  assert.deepEqual((await rawHello(b.port, { t: 'hello', v: 2 })).first, { t: 'refused', why: 'malformed' });
  assert.deepEqual(b.stats.refused, { unknown: 1, stale: 0, forged: 2, 'not-allowed': 0, malformed: 1 });
  // 5. The cloud: a third edge neither sees nor resolves it; nobody registers an intent at itself.
  const cc = await client('edge-c');
  const seenByC: IntentMsg[] = [];
  const stop = cc.watch((i) => seenByC.push(i));
  await sleep(300);
  stop();
  assert.equal(seenByC.length, 0);
  await assert.rejects(cc.resolve(intent.intentId, 'INTENT_OUTCOME_CANCELLED'), (e: ControlError) => e.code === 7);
  await assert.rejects(ca.register({ targetId: 'edge-a', listener: { host: '127.0.0.1', port: 9 }, ttlMs: 5000, reverseAfterMs: 0 }), (e: ControlError) => e.code === 3);
  await ca.resolve(intent.intentId, 'INTENT_OUTCOME_CANCELLED');
  b.close();

  // 6. An impostor at the initiator's listener address cannot prove the intent: no dial-back link.
  const impostor = net.createServer((s) => {
    const dec = new FrameDecoder(() => s.write(frame(Buffer.from(JSON.stringify({ t: 'auth', nonce: randomBytes(16).toString('hex'), proof: 'f'.repeat(64) })))));
    s.on('data', (c: Buffer) => dec.push(c));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => impostor.listen(0, '127.0.0.1', r));
  const b2 = await peer('edge-b', false);
  const links: PeerLink[] = [];
  b2.onLink((l) => links.push(l));
  await ca.register({ targetId: 'edge-b', listener: { host: '127.0.0.1', port: (impostor.address() as net.AddressInfo).port }, ttlMs: 5000, reverseAfterMs: 0 });
  await until('the target dialled back', () => b2.stats.dialBacks === 1);
  await until('and refused the impostor', () => b2.stats.refused.forged === 1);
  assert.equal(links.length, 0);
  impostor.close();
  b2.close();
});

test('spans: one per call at the cloud, one per intent with its outcome, connect and dial-back at the edges', async () => {
  await until('spans exported', () => exporter.getFinishedSpans().length > 0);
  const spans = exporter.getFinishedSpans();
  const names = new Set(spans.map((s) => s.name));
  for (const n of ['braid.v1.RendezvousService/RegisterIntent', 'braid.v1.RendezvousService/ResolveIntent', 'braid.v1.RendezvousService/WatchIntents',
    'braid.rendezvous.intent', 'braid.rendezvous.connect', 'braid.rendezvous.dialback']) {
    assert.ok(names.has(n), `span ${n} missing; have ${[...names].join(', ')}`);
  }
  const outcomes = spans.filter((s) => s.name === 'braid.rendezvous.intent').map((s) => s.attributes['braid.rendezvous.outcome']);
  for (const o of ['forward', 'reverse', 'expired', 'cancelled']) assert.ok(outcomes.includes(o), `an intent span ended ${o}: ${outcomes.join(', ')}`);
  const refused = spans.filter((s) => s.name === 'braid.v1.RendezvousService/RegisterIntent' && s.status.code === 2);
  assert.ok(refused.length >= 1, 'the refused registration is an error span');
});
