// TCP across network namespaces, through a Unix socket. A namespace's 127.0.0.1 is its own: a
// gateway in the edge namespace cannot reach an OTLP collector on the host's loopback, and the
// host cannot reach the dashboard on the edge's loopback. Unix sockets live in the file system,
// not in a network namespace, so a forwarder on each side of one joins the two:
//
//   into a namespace (telemetry out):  ns 127.0.0.1:4318 --(forward.ts in ns)--> unix sock --(host)--> host 127.0.0.1:PORT
//   out of a namespace (dashboard in): host 127.0.0.1:PORT --(host)--> unix sock --(forward.ts in ns)--> ns 127.0.0.1:9464
//
// Run as a program inside a namespace: `forward.ts FROM TO` with FROM/TO `tcp:HOST:PORT` or
// `unix:PATH`; it prints "forwarding FROM -> TO" once listening. The host side runs in-process.
import net from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './apps.js';
import type { ManagedProcess } from './process.js';
import type { Topology } from './topology.js';

type Endpoint = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

function parseEndpoint(s: string): Endpoint {
  if (s.startsWith('unix:')) return { kind: 'unix', path: s.slice(5) };
  const m = /^tcp:(.+):(\d+)$/.exec(s);
  if (!m) throw new Error(`forward: expected tcp:HOST:PORT or unix:PATH, got ${s}`);
  return { kind: 'tcp', host: m[1]!, port: Number(m[2]) };
}

function connect(to: Endpoint): net.Socket {
  return to.kind === 'tcp' ? net.connect(to.port, to.host) : net.connect(to.path);
}

/** Open sockets of each forwarder: closing one must not wait for long-lived streams (SSE). */
const open = new WeakMap<net.Server, Set<net.Socket>>();

/** Listens on `from` and pipes every connection to `to`. */
export function forward(from: Endpoint, to: Endpoint): Promise<net.Server> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = connect(to);
    sockets.add(inbound);
    sockets.add(outbound);
    inbound.once('close', () => sockets.delete(inbound));
    outbound.once('close', () => sockets.delete(outbound));
    inbound.pipe(outbound).pipe(inbound);
    const end = (): void => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', end);
    outbound.on('error', end);
    inbound.on('close', end);
    outbound.on('close', end);
  });
  open.set(server, sockets);
  if (from.kind === 'unix') rmSync(from.path, { force: true });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => { server.off('error', reject); resolve(server); };
    if (from.kind === 'tcp') server.listen(from.port, from.host, done);
    else server.listen(from.path, done);
  });
}

export interface Bridge {
  /** Host port (exposeFromNamespace) or namespace port (bridgeIntoNamespace). */
  readonly port: number;
  close(): Promise<void>;
}

function closeServer(s: net.Server): Promise<void> {
  const done = new Promise<void>((resolve) => s.close(() => resolve()));
  for (const sock of open.get(s) ?? []) sock.destroy();
  return done;
}

const forwarderArgv = (from: string, to: string): string[] =>
  [process.execPath, '--import', 'tsx', join(REPO_ROOT, 'test', 'harness', 'forward.ts'), from, to];

async function startInNs(topo: Topology, ns: string, from: string, to: string, name: string): Promise<ManagedProcess> {
  const p = topo.spawn(ns, forwarderArgv(from, to), { name, cwd: REPO_ROOT });
  await p.waitFor(/forwarding /, 15_000);
  return p;
}

/**
 * Makes host 127.0.0.1:hostPort reachable as 127.0.0.1:nsPort inside namespace `ns` (e.g. an
 * OTLP receiver on the host for gateways in namespaces).
 */
export async function bridgeIntoNamespace(topo: Topology, ns: string, opts: { hostPort: number; nsPort: number; dir: string }): Promise<Bridge> {
  const sock = join(opts.dir, `fwd-in-${ns}-${opts.nsPort}.sock`);
  const host = await forward({ kind: 'unix', path: sock }, { kind: 'tcp', host: '127.0.0.1', port: opts.hostPort });
  let p: ManagedProcess;
  try {
    p = await startInNs(topo, ns, `tcp:127.0.0.1:${opts.nsPort}`, `unix:${sock}`, `forward-in-${ns}`);
  } catch (e) {
    await closeServer(host);
    throw e;
  }
  return {
    port: opts.nsPort,
    close: async () => {
      await topo.release(p);
      await closeServer(host);
      rmSync(sock, { force: true });
    },
  };
}

/**
 * Makes 127.0.0.1:nsPort inside namespace `ns` reachable on the host as 127.0.0.1:port (port 0:
 * any free port; see Bridge.port), e.g. the edge's dashboard for a browser on the host.
 */
export async function exposeFromNamespace(topo: Topology, ns: string, opts: { nsPort: number; hostPort?: number; dir: string }): Promise<Bridge> {
  const sock = join(opts.dir, `fwd-out-${ns}-${opts.nsPort}.sock`);
  const p = await startInNs(topo, ns, `unix:${sock}`, `tcp:127.0.0.1:${opts.nsPort}`, `forward-out-${ns}`);
  let host: net.Server;
  try {
    host = await forward({ kind: 'tcp', host: '127.0.0.1', port: opts.hostPort ?? 0 }, { kind: 'unix', path: sock });
  } catch (e) {
    await topo.release(p);
    throw e;
  }
  return {
    port: (host.address() as net.AddressInfo).port,
    close: async () => {
      await closeServer(host);
      await topo.release(p);
      rmSync(sock, { force: true });
    },
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '\0') && process.argv.length === 4) {
  const [from, to] = process.argv.slice(2) as [string, string];
  const server = await forward(parseEndpoint(from), parseEndpoint(to));
  process.stdout.write(`forwarding ${from} -> ${to}\n`);
  const stop = (): void => {
    for (const sock of open.get(server) ?? []) sock.destroy();
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
