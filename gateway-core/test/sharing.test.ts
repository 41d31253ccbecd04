// Carrier sharing without namespaces: a lender and a borrower on loopback, linked through a real
// rendezvous (mTLS control-plane server, certificates from gen-dev-certs.sh), the lender's
// "carriers" being UDP sockets to a stand-in for the cloud's data plane that echoes every
// datagram. Checks the relay both ways with its counters, that each carrier keeps its own
// socket (the cloud tells borrowed paths apart by source port), that malformed link frames are
// counted and dropped, and that a lost link is re-established and the paths re-attached.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlServer, ControlError, type ControlServer, type TlsFiles } from '../src/control/index.js';
import { createRendezvousService, RendezvousClient, RendezvousPeer, type RendezvousServiceHandle } from '../src/rendezvous/index.js';
import { CarrierBorrower, CarrierLender } from '../src/sharing/index.js';
import type { Path } from '../src/path/path.js';
import { until } from './wait.js';

const SCRIPT = new URL('../../scripts/gen-dev-certs.sh', import.meta.url).pathname;
let dir = '';
let server: ControlServer;
let svc: RendezvousServiceHandle;
let target = '';
let echo: dgram.Socket;
/** Source ports the echo saw, per first payload byte (the test marks datagrams by carrier). */
const sourcePorts = new Map<number, Set<number>>();
const closers: (() => void)[] = [];

const files = (name: string): TlsFiles => ({ ca: join(dir, 'ca.pem'), cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) });

async function peer(name: string, listen: boolean): Promise<RendezvousPeer> {
  const client = await RendezvousClient.open({ target, tls: files(name), serverName: 'braid-cloud' });
  const p = new RendezvousPeer({
    id: name, rendezvous: client, bindHost: '127.0.0.1', advertiseHost: '127.0.0.1', listenPort: listen ? 0 : undefined,
    acceptFrom: (id) => id === 'edge-a', learnWaitMs: 1000,
  });
  await p.start();
  closers.push(() => p.close(), () => client.close());
  return p;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'braid-sharing-'));
  for (const id of ['edge-a', 'edge-b']) {
    execFileSync('bash', [SCRIPT, dir, '--edge-id', id, '--cloud-san', 'DNS:braid-cloud,IP:127.0.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    copyFileSync(join(dir, 'edge.pem'), join(dir, `${id}.pem`));
    copyFileSync(join(dir, 'edge.key'), join(dir, `${id}.key`));
    unlinkSync(join(dir, 'edge.key'));
  }
  svc = createRendezvousService();
  server = await startControlServer({
    listen: '127.0.0.1:0', tls: files('cloud'), services: [svc.service],
    onHello: () => Promise.reject(new ControlError(12, 'no sessions in this test')),
  });
  target = `127.0.0.1:${server.port}`;
  echo = dgram.createSocket('udp4');
  echo.on('message', (m, r) => {
    const set = sourcePorts.get(m[0] as number) ?? new Set();
    set.add(r.port);
    sourcePorts.set(m[0] as number, set);
    echo.send(m, r.port, r.address);
  });
  await new Promise<void>((r) => echo.bind(0, '127.0.0.1', r));
});

after(async () => {
  for (const c of closers) c();
  echo?.close();
  svc?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('borrowed carriers relay both ways with counters, one socket each; bad frames dropped; a lost link comes back', async () => {
  const b = await peer('edge-b', true);
  const a = await peer('edge-a', false);
  // The lender's two "carriers": plain UDP sockets to the echo (no interface pinning on loopback).
  const opened: Path[] = [];
  const lender = new CarrierLender({
    peer: b, carriers: [{ name: 'lte-x', interface: 'lo' }, { name: 'lte-y', interface: 'lo' }],
    cloud: () => ({ host: '127.0.0.1', port: (echo.address()).port }),
    openCarrier: async (_c, host, port) => {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
      let cb: (d: Buffer) => void = () => {};
      s.on('message', (m) => cb(m));
      const p: Path = {
        description: `udp ${host}:${port}`,
        send: (d) => { s.send(d, port, host); return true; },
        onDatagram: (f) => { cb = f; },
        onError: () => undefined,
        close: () => { try { s.close(); } catch { /* already closed */ } },
      };
      opened.push(p);
      return p;
    },
  });
  closers.push(() => lender.close());
  const attached = new Map<number, Path>();
  const got = new Map<number, Buffer[]>();
  const borrower = new CarrierBorrower({
    peer: a, lender: 'edge-b', address: { host: '127.0.0.1', port: b.port },
    carriers: [{ pathId: 2, name: 'b-x', index: 0 }, { pathId: 3, name: 'b-y', index: 1 }],
    attach: (id, p) => {
      attached.set(id, p);
      p.onDatagram((d) => got.set(id, [...(got.get(id) ?? []), d]));
    },
    reverseAfterMs: 5000, retryMs: 200,
  });
  closers.push(() => borrower.stop());
  borrower.start();
  await until('both paths attached', () => attached.size === 2);
  assert.equal(borrower.direction, 'forward');
  const sent = new Map<number, Buffer[]>([[2, []], [3, []]]);
  for (let i = 0; i < 50; i++) {
    for (const [id, mark] of [[2, 0xa0], [3, 0xb0]] as const) {
      const d = Buffer.concat([Buffer.from([mark]), randomBytes(100 + i * 20)]);
      sent.get(id)!.push(d);
      attached.get(id)!.send(d);
    }
  }
  await until('every echo back on its own path', () => (got.get(2)?.length ?? 0) === 50 && (got.get(3)?.length ?? 0) === 50);
  for (const id of [2, 3]) assert.deepEqual(got.get(id), sent.get(id), `path ${id}: byte-identical and in order`);
  const [x, y] = lender.counters;
  assert.equal(x!.upPackets, 50);
  assert.equal(y!.downPackets, 50);
  assert.equal(x!.upBytes, sent.get(2)!.reduce((n, d) => n + d.length, 0));
  assert.equal(sourcePorts.get(0xa0)?.size, 1);
  assert.equal(sourcePorts.get(0xb0)?.size, 1);
  assert.notDeepEqual([...sourcePorts.get(0xa0)!], [...sourcePorts.get(0xb0)!], 'each lent carrier has its own socket');

  // A frame naming a carrier that is not lent, and an empty one: counted, nothing relayed.
  const link = (attached.get(2) as unknown as { link: { send(d: Buffer): boolean } }).link;
  link.send(Buffer.from([7, 1, 2, 3]));
  link.send(Buffer.from([0]));
  await until('malformed frames counted', () => lender.malformed === 2);
  assert.equal(x!.upPackets, 50);

  // The link breaks (the lender goes away and comes back): the borrower reconnects and re-attaches.
  lender.close();
  await until('the borrower noticed', () => borrower.direction === undefined);
  const lender2 = new CarrierLender({
    peer: b, carriers: [{ name: 'lte-x', interface: 'lo' }], cloud: () => ({ host: '127.0.0.1', port: echo.address().port }),
    openCarrier: async (_c, host, port) => {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
      let cb: (d: Buffer) => void = () => {};
      s.on('message', (m) => cb(m));
      return { description: 'udp', send: (d) => { s.send(d, port, host); return true; }, onDatagram: (f) => { cb = f; }, onError: () => undefined, close: () => s.close() };
    },
  });
  closers.push(() => lender2.close());
  await until('a second link', () => borrower.stats.links === 2, 10_000);
  const before2 = got.get(2)!.length;
  attached.get(2)!.send(Buffer.from([0xa0, 1, 2, 3]));
  await until('traffic on the new link', () => got.get(2)!.length === before2 + 1);
  assert.equal(lender2.counters[0]!.upPackets, 1);
});
