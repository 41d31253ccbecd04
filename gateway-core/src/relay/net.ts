// The TCP relay's real sockets: the edge's listener, where nftables `redirect` sends the client
// connections it intercepts (gateway-edge/src/interception.ts), and the cloud's dialer to the
// destinations. Each socket is wired to its relay stream through RelayConn / RelayConnEvents.
import net from 'node:net';
import { originalDst, tcpSocketFd } from '../native/index.js';
import type { Logger } from '../log.js';
import type { FlowAddress, ResetReason } from './frame.js';
import { LateEvents, type RelayConnEvents, type TcpRelay } from './relay.js';
import type { RelayConn } from './stream.js';

function ipv4ToNumber(s: string): number | undefined {
  const m = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((n) => n > 255)) return undefined;
  return (((parts[0] as number) << 24) | ((parts[1] as number) << 16) | ((parts[2] as number) << 8) | (parts[3] as number)) >>> 0;
}

/** Why a socket failed, as the reset reason the peer is told. */
function reasonOf(err: NodeJS.ErrnoException | undefined): ResetReason {
  switch (err?.code) {
    case 'ECONNREFUSED': return 'refused';
    case 'EHOSTUNREACH': case 'ENETUNREACH': case 'EADDRNOTAVAIL': return 'unreachable';
    case 'ETIMEDOUT': return 'timeout';
    default: return 'reset';
  }
}

/** A node:net socket as the relay's RelayConn, its events fed to `events`. */
export function wireSocket(sock: net.Socket, events: RelayConnEvents): RelayConn {
  let failure: NodeJS.ErrnoException | undefined;
  sock.setNoDelay(true);
  sock.on('data', (b: Buffer) => events.data(b));
  sock.on('end', () => events.end());
  sock.on('drain', () => events.drain());
  sock.on('error', (e: NodeJS.ErrnoException) => {
    failure = e;
  });
  sock.on('close', (hadError) => events.closed(hadError ? reasonOf(failure) : undefined));
  return {
    write: (b) => (sock.destroyed || sock.writableEnded ? true : sock.write(b)),
    buffered: () => sock.writableLength,
    end: () => {
      if (!sock.destroyed) sock.end();
    },
    reset: () => {
      if (!sock.destroyed) sock.resetAndDestroy();
    },
    pause: () => sock.pause(),
    resume: () => sock.resume(),
  };
}

export interface RelayListener {
  readonly port: number;
  /** Connections accepted and relayed / refused (not redirected, no session, stream limit). */
  readonly counts: { relayed: number; refused: number };
  close(): Promise<void>;
}

/**
 * Edge: listen for redirected client connections on `port` (all addresses: nftables `redirect`
 * rewrites the destination to the address of the interface the client came in on). Each
 * connection's original destination comes from SO_ORIGINAL_DST; one that was not redirected
 * (someone dialling the port itself) is refused.
 */
export async function startRelayListener(port: number, relay: () => TcpRelay | undefined, log: Logger): Promise<RelayListener> {
  const counts = { relayed: 0, refused: 0 };
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => {
    const refuse = (why: string): void => {
      counts.refused++;
      log.debug({ from: `${sock.remoteAddress}:${sock.remotePort}`, why }, 'relay connection refused');
      sock.resetAndDestroy();
    };
    let dst: { address: string; port: number };
    try {
      dst = originalDst(tcpSocketFd(sock));
    } catch (err) {
      return refuse((err as Error).message);
    }
    const src = ipv4ToNumber(sock.remoteAddress ?? '');
    const dstN = ipv4ToNumber(dst.address);
    if (src === undefined || dstN === undefined) return refuse('not IPv4');
    if (dst.port === port && dst.address === (sock.localAddress ?? '').replace(/^::ffff:/, '')) return refuse('not redirected');
    const r = relay();
    if (!r) return refuse('no session');
    const addr: FlowAddress = { src, dst: dstN, sport: sock.remotePort ?? 0, dport: dst.port };
    const events = new LateEvents();
    const conn = wireSocket(sock, events);
    events.target = r.accept(addr, conn);
    if (!events.target) return refuse('stream limit');
    counts.relayed++;
    sock.resume();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '0.0.0.0', port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.warn({ err }, 'relay listener error'));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : port,
    counts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface DialerOptions {
  connectTimeoutMs: number;
  /** Destinations the cloud never dials for an edge (its own loopback, link-local metadata...). */
  refused: (address: string) => boolean;
  log: Logger;
}

/** Cloud: the relay's `dial` (RelayOptions.dial) over node:net. */
export function relayDialer(o: DialerOptions): (to: { address: string; port: number }, events: RelayConnEvents) => RelayConn | ResetReason {
  return (to, events) => {
    if (o.refused(to.address) || to.port === 0) return 'policy';
    const sock = net.connect({ host: to.address, port: to.port, allowHalfOpen: true });
    sock.setTimeout(o.connectTimeoutMs, () => {
      // Only the connect is timed: once connected, a relayed connection may idle for hours.
      if (sock.connecting) sock.destroy(Object.assign(new Error(`connect to ${to.address}:${to.port} timed out`), { code: 'ETIMEDOUT' }));
    });
    sock.once('connect', () => sock.setTimeout(0));
    return wireSocket(sock, events);
  };
}
