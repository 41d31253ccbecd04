// One compliance suite for every Path transport (in the style of js-libp2p's transport
// interface tests): a function that takes a transport factory and checks the Path contract over
// loopback. UDP, TCP and TLS each run it; a new transport only has to add a factory.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import type { Path } from '../src/path/path.js';
import { UdpCarrierPath, UdpListener, UdpPeerPath } from '../src/path/udp.js';
import { StreamListener, openTcpCarrierPath, openTlsCarrierPath, type StreamPath } from '../src/path/stream.js';
import { FrameDecoder, MAX_FRAME_PAYLOAD, frame } from '../src/path/framing.js';
import { sleep, until } from './wait.js';

/** The server end of a transport: accepts peers and hands out one Path per peer. */
interface TestServer {
  port: number;
  /** Resolves with the next peer's path (UDP: created by the peer's first datagram). */
  nextPeer(): Promise<Path>;
  close(): void;
}

interface TransportFactory {
  name: string;
  listen(): Promise<TestServer>;
  dial(port: number, opts?: { maxQueueBytes?: number }): Promise<Path>;
  /** A port nobody listens on. */
  connectionless: boolean;
  /** The transport queues in user space and must bound that queue. */
  boundedQueue: boolean;
  /** First datagram the client sends so the server learns it (UDP has no accept). */
  hello: boolean;
}

/** A loopback port that refuses connections (bound then closed). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function collector(p: Path): Buffer[] {
  const got: Buffer[] = [];
  p.onDatagram((d) => got.push(d));
  return got;
}

export function pathCompliance(f: TransportFactory): void {
  describe(`Path compliance: ${f.name}`, () => {
    let server: TestServer;
    const opened: Path[] = [];

    before(async () => { server = await f.listen(); });
    after(() => {
      for (const p of opened) p.close();
      server.close();
    });

    async function connect(opts?: { maxQueueBytes?: number }): Promise<{ client: Path; peer: Path }> {
      const client = await f.dial(server.port, opts);
      opened.push(client);
      const peerP = server.nextPeer();
      if (f.hello) assert.equal(client.send(Buffer.from('hello')), true);
      const peer = await peerP;
      opened.push(peer);
      return { client, peer };
    }

    test('connects and sends datagrams both ways, unchanged', async () => {
      const { client, peer } = await connect();
      const atPeer = collector(peer);
      const atClient = collector(client);
      assert.ok(client.description.length > 0 && peer.description.length > 0);
      const up = [Buffer.from('from client 1'), Buffer.from('from client 2')];
      for (const d of up) assert.equal(client.send(d), true);
      const down = Buffer.from('from peer');
      assert.equal(peer.send(down), true);
      await until('both directions', () => atPeer.length >= 2 && atClient.length >= 1, 3000, 5);
      assert.deepEqual(atPeer.slice(0, 2), up);
      assert.deepEqual(atClient[0], down);
    });

    test('large (8 KB) and tiny (1 byte) datagrams keep their boundaries', async () => {
      const { client, peer } = await connect();
      const atPeer = collector(peer);
      const large = Buffer.alloc(8192, 0xab);
      large.writeUInt32BE(0xdeadbeef, 100);
      const tiny = Buffer.from([7]);
      const sent = [tiny, large, tiny, Buffer.alloc(1400, 1), large];
      for (const d of sent) assert.equal(client.send(d), true);
      await until('all datagrams', () => atPeer.length >= sent.length, 3000, 5);
      assert.deepEqual(atPeer.map((d) => d.length), sent.map((d) => d.length));
      assert.deepEqual(atPeer, sent);
    });

    test('a burst of 2000 datagrams: every accepted one arrives (in order on streams)', async () => {
      const { client, peer } = await connect();
      const atPeer = collector(peer);
      const accepted: number[] = [];
      for (let i = 0; i < 2000; i++) {
        const d = Buffer.alloc(200);
        d.writeUInt32BE(i, 0);
        if (client.send(d)) accepted.push(i);
        // Yield now and then: loopback UDP drops what the receiver cannot drain, and a stream
        // path refuses what its bounded queue cannot hold; neither is what this test is about.
        if (i % 100 === 99) await sleep(2);
      }
      assert.ok(accepted.length >= 1900, `only ${accepted.length} of 2000 accepted`);
      await until('the burst', () => atPeer.length >= (f.connectionless ? accepted.length * 0.95 : accepted.length), 5000, 5);
      if (!f.connectionless) assert.deepEqual(atPeer.map((d) => d.readUInt32BE(0)), accepted);
    });

    test('close is idempotent, later sends return false and no callbacks run after it', async () => {
      const { client, peer } = await connect();
      let afterClose = 0;
      client.onDatagram(() => afterClose++);
      client.onError(() => afterClose++);
      client.onClose?.(() => afterClose++);
      client.close();
      client.close();
      assert.equal(client.send(Buffer.from('x')), false);
      peer.send(Buffer.from('to a closed path'));
      await sleep(100);
      assert.equal(afterClose, 0);
    });

    test('a refused connect is an error (rejected open, or an error callback)', async () => {
      const port = await closedPort();
      let err: Error | undefined;
      try {
        const p = await f.dial(port);
        opened.push(p);
        p.onError((e) => { err = e; });
        for (let i = 0; i < 20 && !err; i++) {
          p.send(Buffer.from('anyone?'));
          await sleep(20);
        }
      } catch (e) {
        err = e as Error;
      }
      assert.ok(err, 'the refusal was reported');
      assert.match(err.message, /ECONNREFUSED|refused/i);
    });

    test('the peer closing is reported once and sends then return false', { skip: f.connectionless ? 'connectionless: there is no connection to close' : false }, async () => {
      const { client, peer } = await connect();
      let closes = 0;
      let closeErr: Error | undefined;
      client.onClose?.((e) => { closes++; closeErr = e; });
      peer.close();
      await until('close callback', () => closes > 0, 3000, 5);
      await sleep(50);
      assert.equal(closes, 1);
      assert.ok(closeErr);
      assert.equal(client.send(Buffer.from('late')), false);
    });

    test('backpressure: a peer that stops reading makes send() return false; the queue stays bounded', async () => {
      const limit = 64 * 1024;
      const { client, peer } = await connect({ maxQueueBytes: limit });
      if (!f.boundedQueue) {
        // Connectionless: the kernel drops on a full socket buffer; sends must never throw or block.
        for (let i = 0; i < 5000; i++) assert.equal(typeof client.send(Buffer.alloc(1200)), 'boolean');
        return;
      }
      (peer as StreamPath & { pauseForTest(): void }).pauseForTest();
      let refused = 0;
      let accepted = 0;
      // Far more than kernel buffers plus the queue can hold.
      for (let i = 0; i < 20_000 && refused === 0; i++) {
        if (client.send(Buffer.alloc(1200))) accepted++;
        else refused++;
        if (i % 500 === 0) await sleep(1);
      }
      assert.ok(refused > 0, `send() refused nothing after ${accepted} datagrams`);
      const st = (client as StreamPath).stats();
      assert.ok(st.queuedBytes <= limit, `queue ${st.queuedBytes} > ${limit}`);
      assert.ok(st.queueDrops >= refused);
    });
  });
}

// ---- factories --------------------------------------------------------------------------------

function udpFactory(): TransportFactory {
  return {
    name: 'udp',
    connectionless: true,
    boundedQueue: false,
    hello: true,
    async listen() {
      const l = await UdpListener.open('127.0.0.1', 0);
      const peers = new Map<string, { path: UdpPeerPath; cb: (d: Buffer) => void }>();
      const waiting: ((p: Path) => void)[] = [];
      l.onDatagram((d, from) => {
        const key = `${from.address}:${from.port}`;
        const e = peers.get(key);
        if (!e) {
          // The cloud learns a UDP path from its first datagram (the hello); the test then
          // demultiplexes later datagrams per peer, as the cloud does per session.
          const path = new UdpPeerPath(l, from.address, from.port);
          const entry = { path, cb: (_: Buffer): void => {} };
          peers.set(key, entry);
          const view: Path = {
            get description() { return path.description; },
            kind: 'udp',
            send: (x) => path.send(x),
            onDatagram: (cb) => { entry.cb = cb; },
            onError: (cb) => path.onError(cb),
            close: () => path.close(),
          };
          waiting.shift()?.(view);
          return;
        }
        e.cb(d);
      });
      return {
        port: l.port,
        nextPeer: () => new Promise<Path>((r) => waiting.push(r)),
        close: () => l.close(),
      };
    },
    dial: (port) => UdpCarrierPath.open({ interface: 'lo', remoteHost: '127.0.0.1', remotePort: port }),
  };
}

function streamFactory(kind: 'tcp' | 'tls', certs: () => { ca: Buffer; cert: Buffer; key: Buffer }): TransportFactory {
  return {
    name: kind,
    connectionless: false,
    boundedQueue: true,
    hello: false,
    async listen() {
      const l = await StreamListener.open({ kind, host: '127.0.0.1', port: 0, ...(kind === 'tls' ? { tls: certs() } : {}) });
      const queue: Path[] = [];
      const waiting: ((p: Path) => void)[] = [];
      l.onConnection((p) => {
        // Let a test stop reading on this end (backpressure) without reaching into the socket.
        Object.assign(p, { pauseForTest: () => (p as unknown as { sock: { pause(): void } }).sock.pause() });
        const w = waiting.shift();
        if (w) w(p);
        else queue.push(p);
      });
      return {
        port: l.port,
        nextPeer: () => {
          const q = queue.shift();
          return q ? Promise.resolve(q) : new Promise<Path>((r) => waiting.push(r));
        },
        close: () => l.close(),
      };
    },
    dial: (port, opts) => {
      const base = { interface: 'lo', remoteHost: '127.0.0.1', remotePort: port, connectTimeoutMs: 3000, ...(opts?.maxQueueBytes ? { maxQueueBytes: opts.maxQueueBytes } : {}) };
      return kind === 'tcp'
        ? openTcpCarrierPath(base)
        : openTlsCarrierPath({ ...base, ca: certs().ca, serverName: 'braid-cloud' });
    },
  };
}

// Certificates for TLS: the dev CA script the gateways use (cloud cert has DNS:braid-cloud).
const certDir = mkdtempSync(join(tmpdir(), 'braid-path-'));
execFileSync('bash', [new URL('../../scripts/gen-dev-certs.sh', import.meta.url).pathname, certDir, '--cloud-san', 'DNS:braid-cloud,IP:127.0.0.1'], { stdio: 'ignore' });
const certs = () => ({
  ca: readFileSync(join(certDir, 'ca.pem')),
  cert: readFileSync(join(certDir, 'cloud.pem')),
  key: readFileSync(join(certDir, 'cloud.key')),
});
after(() => rmSync(certDir, { recursive: true, force: true }));

pathCompliance(udpFactory());
pathCompliance(streamFactory('tcp', certs));
pathCompliance(streamFactory('tls', certs));

describe('stream listener bounds', () => {
  test('a connection that stays silent is closed after the idle timeout', async () => {
    const l = await StreamListener.open({ kind: 'tcp', host: '127.0.0.1', port: 0, idleTimeoutMs: 150 });
    try {
      const client = await openTcpCarrierPath({ remoteHost: '127.0.0.1', remotePort: l.port, connectTimeoutMs: 2000 });
      let closed = false;
      client.onClose(() => { closed = true; });
      await until('idle close', () => closed, 3000, 5);
      assert.equal(l.connections, 0);
    } finally {
      l.close();
    }
  });
});

describe('TLS path verification', () => {
  test('a certificate for another name is refused', async () => {
    const l = await StreamListener.open({ kind: 'tls', host: '127.0.0.1', port: 0, tls: certs() });
    try {
      await assert.rejects(
        openTlsCarrierPath({ remoteHost: '127.0.0.1', remotePort: l.port, ca: certs().ca, serverName: 'not-the-cloud', connectTimeoutMs: 3000 }),
        /not-the-cloud|altnames|Hostname/i,
      );
    } finally {
      l.close();
    }
  });
});

describe('stream framing', () => {
  test('datagrams survive any chunking of the stream (1-byte chunks, random splits, many per chunk)', () => {
    const datagrams = [Buffer.alloc(0), Buffer.from([1]), Buffer.alloc(1400, 2), Buffer.alloc(9000, 3), Buffer.from('end')];
    const wire = Buffer.concat(datagrams.map(frame));
    let seed = 7;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    for (const split of ['bytes', 'random', 'whole'] as const) {
      const got: Buffer[] = [];
      const dec = new FrameDecoder((d) => got.push(d));
      for (let off = 0; off < wire.length;) {
        const n = split === 'bytes' ? 1 : split === 'whole' ? wire.length : 1 + rand(3000);
        dec.push(wire.subarray(off, off + n));
        off += n;
      }
      assert.deepEqual(got, datagrams, split);
      assert.equal(dec.pendingBytes, 0);
    }
  });

  test('a datagram over the frame limit is refused', () => {
    assert.throws(() => frame(Buffer.alloc(MAX_FRAME_PAYLOAD + 1)), /frame limit/);
  });
});
