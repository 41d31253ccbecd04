// The racer over real transports on loopback (real clock, T = 60 ms): UDP gets no answer (as if a
// middlebox dropped it), so the TCP stream connects after T; when the TCP service goes away the
// anomaly threshold reruns the cascade and TLS connects at t0 + 2T of the new round.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realClock } from '../src/clock.js';
import type { Path } from '../src/path/path.js';
import { UdpCarrierPath, UdpListener } from '../src/path/udp.js';
import { StreamListener, openTcpCarrierPath, openTlsCarrierPath } from '../src/path/stream.js';
import { TransportRacer } from '../src/racing/racer.js';
import { DEFAULT_WEIGHTS } from '../src/racing/weights.js';

const ANSWER = Buffer.from('authenticated answer');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let dir = '';
let udp: UdpListener;
let tcp: StreamListener | undefined;
let tls: StreamListener;
let ca: Buffer;

/** A peer that answers every datagram on a stream connection (the cloud's session would). */
function answering(l: StreamListener): void {
  l.onConnection((p) => p.onDatagram(() => p.send(ANSWER)));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'braid-race-'));
  execFileSync('bash', [new URL('../../scripts/gen-dev-certs.sh', import.meta.url).pathname, dir, '--cloud-san', 'DNS:braid-cloud,IP:127.0.0.1'], { stdio: 'ignore' });
  ca = readFileSync(join(dir, 'ca.pem'));
  // UDP: a socket that receives and never answers.
  udp = await UdpListener.open('127.0.0.1', 0);
  udp.onDatagram(() => undefined);
  tcp = await StreamListener.open({ kind: 'tcp', host: '127.0.0.1', port: 0 });
  answering(tcp);
  tls = await StreamListener.open({ kind: 'tls', host: '127.0.0.1', port: 0, tls: { cert: readFileSync(join(dir, 'cloud.pem')), key: readFileSync(join(dir, 'cloud.key')) } });
  answering(tls);
});

after(() => {
  udp?.close();
  tcp?.close();
  tls?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('UDP unanswered: TCP after T; TCP gone: re-established over TLS', async () => {
  const T = 60;
  const tcpPort = tcp!.port;
  const racer: TransportRacer = new TransportRacer({
    name: 'lo',
    clock: realClock,
    cascade: ['udp', 'tcp', 'tls'],
    open: (kind): Promise<Path> => {
      if (kind === 'udp') return UdpCarrierPath.open({ interface: 'lo', remoteHost: '127.0.0.1', remotePort: udp.port });
      if (kind === 'tcp') return openTcpCarrierPath({ interface: 'lo', remoteHost: '127.0.0.1', remotePort: tcpPort, connectTimeoutMs: 1000 });
      return openTlsCarrierPath({ interface: 'lo', remoteHost: '127.0.0.1', remotePort: tls.port, connectTimeoutMs: 1000, ca, serverName: 'braid-cloud' });
    },
    isAuthentic: (d) => d.equals(ANSWER),
    requestProbe: () => racer.send(Buffer.from('connect request')),
    switchThresholdMs: T,
    anomalyThresholdMs: 400,
    weights: DEFAULT_WEIGHTS,
    keepSeveralStreams: false,
  });
  // A getter, so the assertion on the first kind does not narrow later reads of it.
  const kindNow = (): string | undefined => racer.kind;
  const received: Buffer[] = [];
  racer.onDatagram((d) => received.push(d));
  // Keepalives, as the session sends them: they keep the chosen stream's answers coming.
  const keepalive = setInterval(() => racer.send(Buffer.from('keepalive')), 50);
  try {
    racer.start();
    for (let i = 0; i < 100 && kindNow() !== 'tcp'; i++) await sleep(20);
    let st = racer.status();
    assert.equal(kindNow(), 'tcp', JSON.stringify(st.events));
    assert.ok((st.streams[1]?.requestedAtMs ?? 0) >= T, `TCP requested at ${st.streams[1]?.requestedAtMs} ms`);
    assert.equal(st.streams[0]?.state, 'closed');
    assert.match(racer.description, /^tcp lo -> 127\.0\.0\.1:/);
    assert.ok(received.some((d) => d.equals(ANSWER)));

    // Past t0 + 2T: the decision is made; stream 3 kept its placeholder (or, on a machine so busy
    // that TCP connected after 2T, was closed when TCP connected).
    await sleep(3 * T);
    assert.ok(['placeholder', 'closed'].includes(racer.status().streams[2]?.state ?? ''));

    // The TCP service disappears: existing connections reset, new ones refused.
    tcp!.close();
    tcp = undefined;
    for (let i = 0; i < 150 && kindNow() !== 'tls'; i++) await sleep(20);
    st = racer.status();
    assert.equal(kindNow(), 'tls', JSON.stringify(st.events));
    assert.ok(st.round >= 2, JSON.stringify(st.events));
    assert.deepEqual(st.active, { stream: 3, kind: 'tls', weight: DEFAULT_WEIGHTS.p3 });
    assert.ok((st.streams[2]?.requestedAtMs ?? 0) >= 2 * T);
    assert.ok(st.events.some((e) => /stream 2 \(tcp\) lost/.test(e.event)), JSON.stringify(st.events));
  } finally {
    clearInterval(keepalive);
    racer.close();
  }
});
