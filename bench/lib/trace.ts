// A time trace of one system's run (`npm run bench -- ... --trace FILE`): what each carrier
// offered and delivered and how full its queue was, what Braid's sender believed about each
// path (rate estimate, delay, bytes in flight, its controller's allowance) and held back, and
// what each TCP sender did (cwnd, RTT, retransmissions), sampled every `intervalMs`. It is
// how a shortfall against the carriers' capacity is traced to its cause: idle capacity while
// TCP's window is small is a TCP limit; a full carrier queue and a long RTT on one path is
// bufferbloat; a held-back reorder buffer is waiting for a slow path.
import type { Topology } from '../../test/harness/topology.js';

export interface TcpSample {
  /** local:port -> peer:port, as ss prints them. */
  flow: string;
  cwnd: number | null;
  rttMs: number | null;
  /** Segments retransmitted so far (ss retrans total). */
  retrans: number | null;
  unacked: number | null;
  deliveryMbps: number | null;
  bytesAcked: number | null;
  /** The congestion control's own view: its name, min RTT, pacing rate (and BBR's bandwidth estimate). */
  cc: string | null;
  minRttMs: number | null;
  pacingMbps: number | null;
  bbrBwMbps: number | null;
  /** Share of the connection's busy time it was limited by the receiver's window / its send buffer (%). */
  rwndLimitedPct: number | null;
  sndbufLimitedPct: number | null;
}

export interface CarrierSample {
  name: string;
  /** Offered and delivered Mbit/s over the last interval, per direction. */
  down: { capacityMbps: number; deliveredMbps: number; queuedBytes: number; droppedQueue: number };
  up: { capacityMbps: number; deliveredMbps: number; queuedBytes: number; droppedQueue: number };
}

export interface TraceSample {
  /** Seconds since the trace started. */
  t: number;
  carriers: CarrierSample[];
  /** Braid only: the cloud's paths (its sender's view) and queue, the edge's reorder buffer. */
  braid?: unknown;
  tcp: TcpSample[];
}

/** Parses `ss -tinH` output: one TcpSample per connection with the fields ss printed. */
export function parseSs(out: string): TcpSample[] {
  const lines = out.split('\n');
  const res: TcpSample[] = [];
  for (let i = 0; i < lines.length; i++) {
    const head = lines[i]!.trim().split(/\s+/);
    if (head.length < 5 || !/^[A-Z-]+$/.test(head[0]!)) continue;
    // `ss -i` prints the info on the next line(s), indented.
    let info = '';
    while (i + 1 < lines.length && /^\s/.test(lines[i + 1]!)) info += ` ${lines[++i]!.trim()}`;
    const num = (re: RegExp): number | null => {
      const m = re.exec(info);
      return m ? Number(m[1]) : null;
    };
    const mbps = (re: RegExp): number | null => {
      const m = re.exec(info);
      if (!m) return null;
      const mult = { '': 1, K: 1e3, M: 1e6, G: 1e9 }[(m[2] ?? '') as '' | 'K' | 'M' | 'G'];
      return round((Number(m[1]) * mult) / 1e6);
    };
    const cc = /^\s*([a-z0-9_]+)\s+wscale:/.exec(info) ?? /\s([a-z0-9_]+)\s+wscale:/.exec(info);
    res.push({
      flow: `${head[3]} -> ${head[4]}`,
      cwnd: num(/\bcwnd:(\d+)/),
      rttMs: num(/\brtt:([\d.]+)\//),
      retrans: num(/\bretrans:\d+\/(\d+)/),
      unacked: num(/\bunacked:(\d+)/),
      deliveryMbps: mbps(/delivery_rate (\d+(?:\.\d+)?)([KMG]?)bps/),
      bytesAcked: num(/\bbytes_acked:(\d+)/),
      cc: cc ? cc[1]! : null,
      minRttMs: num(/\bminrtt:([\d.]+)/),
      pacingMbps: mbps(/pacing_rate (\d+(?:\.\d+)?)([KMG]?)bps/),
      bbrBwMbps: mbps(/bbr:\(bw:(\d+(?:\.\d+)?)([KMG]?)bps/),
      rwndLimitedPct: num(/rwnd_limited:\d+ms\(([\d.]+)%\)/),
      sndbufLimitedPct: num(/sndbuf_limited:\d+ms\(([\d.]+)%\)/),
    });
  }
  return res;
}

export interface TraceOptions {
  topo: Topology;
  /** Namespaces whose TCP senders to sample (the server for downloads, the client for uploads). */
  tcpNamespaces: string[];
  /** Only connections on these ports (the traffic's iperf3 ports). */
  portRange: [number, number];
  /** Braid's status, compacted (undefined for other systems). */
  braidStatus?: () => Promise<unknown>;
  intervalMs?: number;
}

/** Starts sampling; the returned function stops it and gives the samples. */
export function startTrace(o: TraceOptions): () => Promise<TraceSample[]> {
  const intervalMs = o.intervalMs ?? 200;
  const samples: TraceSample[] = [];
  const t0 = Date.now();
  let prev: Awaited<ReturnType<Topology['emulatorStats']>>[] | undefined;
  let stopped = false;
  const carrierCount = o.topo.carriers.length;
  const filter = `( sport >= :${o.portRange[0]} and sport <= :${o.portRange[1]} ) or ( dport >= :${o.portRange[0]} and dport <= :${o.portRange[1]} )`;
  const once = async (): Promise<void> => {
    const stats = await Promise.all(Array.from({ length: carrierCount }, (_, i) => o.topo.emulatorStats(i).catch(() => undefined)));
    const ss = await Promise.all(o.tcpNamespaces.map((ns) => o.topo.exec(ns, ['ss', '-tinH', filter], { allowFailure: true })));
    const braid = o.braidStatus ? await o.braidStatus().catch((err: unknown) => ({ error: (err as Error).message })) : undefined;
    const carriers: CarrierSample[] = [];
    stats.forEach((s, i) => {
      const p = prev?.[i];
      if (!s || !p) return;
      const dt = s.t - p.t;
      if (dt <= 0) return;
      const dir = (d: 'up' | 'down') => ({
        capacityMbps: round(((s[d].capacityBytes - p[d].capacityBytes) * 8) / dt / 1e6),
        deliveredMbps: round(((s[d].deliveredBytes - p[d].deliveredBytes) * 8) / dt / 1e6),
        queuedBytes: s[d].queuedBytes,
        droppedQueue: s[d].droppedQueue - p[d].droppedQueue,
      });
      carriers.push({ name: o.topo.carriers[i]!.name, down: dir('down'), up: dir('up') });
    });
    if (stats.every((s) => s !== undefined)) prev = stats as NonNullable<(typeof stats)[number]>[];
    const tcp = ss.flatMap((r) => (r.code === 0 ? parseSs(r.stdout) : [])).filter((f) => (f.bytesAcked ?? 0) > 64 * 1024);
    samples.push({ t: round((Date.now() - t0) / 1000), carriers, ...(braid !== undefined ? { braid } : {}), tcp });
  };
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      await once().catch(() => undefined);
      await new Promise((r) => setTimeout(r, Math.max(0, intervalMs - (Date.now() - started))));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    return samples;
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
