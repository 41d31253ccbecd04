// The cloud's side of S2-13: how far this PoP is from a destination, as the time a TCP
// connection set-up takes (SYN to SYN-ACK, or to the RST of a closed port: either is one round
// trip). No ICMP, no raw sockets, no privileges. Each target is measured about once a second
// while edges keep asking for it; the median of the last three samples damps one-off queueing.
import net from 'node:net';

export type Connect = (host: string, port: number, timeoutMs: number) => Promise<{ rttMs: number } | { error: string }>;

/** One TCP connection attempt, timed with the monotonic clock; the connection is closed at once. */
export const tcpConnectTime: Connect = (host, port, timeoutMs) => new Promise((resolve) => {
  const t0 = performance.now();
  const s = net.connect({ host, port });
  const done = (r: { rttMs: number } | { error: string }): void => {
    clearTimeout(timer);
    s.destroy();
    resolve(r);
  };
  const timer = setTimeout(() => done({ error: 'timeout' }), timeoutMs);
  s.once('connect', () => done({ rttMs: performance.now() - t0 }));
  s.once('error', (e: NodeJS.ErrnoException) => {
    // A refusal is an answer from the destination: the round trip is measured all the same.
    if (e.code === 'ECONNREFUSED') done({ rttMs: performance.now() - t0 });
    else done({ error: e.code ?? e.message });
  });
});

export interface TargetDelay { target: string; rttMs: number | undefined; error: string | undefined; ageMs: number }

interface Entry { samples: number[]; error: string | undefined; sampledAt: number; askedAt: number; inFlight: Promise<void> | undefined }

export const MAX_TARGETS = 64;

/** "a.b.c.d:port" -> host and port, or undefined. */
export function parseTarget(t: string): { host: string; port: number } | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}):(\d{1,5})$/.exec(t);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const port = Number(m[5]);
  if (octets.some((o) => o > 255) || port < 1 || port > 65535) return undefined;
  return { host: octets.join('.'), port };
}

export interface ProberOptions {
  connect?: Connect;
  intervalMs?: number;
  timeoutMs?: number;
  /** A target nobody asked for this long is dropped. */
  forgetAfterMs?: number;
  /** Most targets followed at once (over all edges). */
  maxTracked?: number;
  now?: () => number;
}

export class DestinationProber {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;
  private readonly connect: Connect;
  private readonly now: () => number;

  constructor(private readonly o: ProberOptions = {}) {
    this.connect = o.connect ?? tcpConnectTime;
    this.now = o.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.o.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The current delays of `targets`; targets never measured before are measured first. */
  async measure(targets: readonly string[]): Promise<TargetDelay[]> {
    const now = this.now();
    const fresh: Promise<void>[] = [];
    for (const t of targets) {
      if (!parseTarget(t)) continue;
      let e = this.entries.get(t);
      if (!e) {
        if (this.entries.size >= (this.o.maxTracked ?? 1024)) continue;
        e = { samples: [], error: undefined, sampledAt: 0, askedAt: now, inFlight: undefined };
        this.entries.set(t, e);
        fresh.push(this.sample(t, e));
      }
      e.askedAt = now;
    }
    await Promise.all(fresh);
    return targets.map((t) => this.view(t));
  }

  private view(target: string): TargetDelay {
    if (!parseTarget(target)) return { target, rttMs: undefined, error: 'not an IPv4 literal and port', ageMs: 0 };
    const e = this.entries.get(target);
    if (!e) return { target, rttMs: undefined, error: 'too many targets followed', ageMs: 0 };
    const s = [...e.samples].sort((a, b) => a - b);
    const median = s.length > 0 ? s[Math.floor(s.length / 2)] : undefined;
    return { target, rttMs: median, error: median === undefined ? (e.error ?? 'not measured yet') : undefined, ageMs: Math.max(0, this.now() - e.sampledAt) };
  }

  private tick(): void {
    const now = this.now();
    for (const [t, e] of this.entries) {
      if (now - e.askedAt > (this.o.forgetAfterMs ?? 60_000)) this.entries.delete(t);
      else void this.sample(t, e);
    }
  }

  private sample(target: string, e: Entry): Promise<void> {
    if (e.inFlight) return e.inFlight;
    const hp = parseTarget(target);
    if (!hp) return Promise.resolve();
    e.inFlight = this.connect(hp.host, hp.port, this.o.timeoutMs ?? 2000).then((r) => {
      e.inFlight = undefined;
      e.sampledAt = this.now();
      if ('rttMs' in r) {
        e.samples.push(r.rttMs);
        if (e.samples.length > 3) e.samples.shift();
        e.error = undefined;
      } else {
        // Unreachable now: old samples would claim otherwise.
        e.samples = [];
        e.error = r.error;
      }
    });
    return e.inFlight;
  }
}
