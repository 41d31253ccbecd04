// The scenario's traffic, run between a client and a server namespace for one system: every
// item at once (bulk TCP and UDP with iperf3, request/response with bench/lib/rr.ts), with the
// receiver's byte count sampled every 100 ms (iperf3 -i 0.1 on the receiving side; rr bins its
// echoes) for goodput and gaps.
import { fileURLToPath } from 'node:url';
import { REPO_ROOT, sleep } from '../../test/harness/apps.js';
import type { ManagedProcess } from '../../test/harness/process.js';
import type { Topology } from '../../test/harness/topology.js';
import type { RrReport } from './rr.js';
import type { TrafficItem } from './scenario.js';
import { sumSeries } from './stats.js';

export const BIN_MS = 100;

/** Where a system's traffic runs: the client end, the server end, and a wrapper (mptcpize). */
export interface Endpoints {
  clientNs: string;
  serverNs: string;
  serverHost: string;
  /** Prefix for both ends' commands, e.g. ['mptcpize', 'run']; empty for plain sockets. */
  wrap: string[];
}

export interface TrafficOutcome {
  /** Payload bytes that reached the receiver, per link direction. */
  payloadBytes: { up: number; down: number };
  /** Receiver payload bytes per 100 ms bin, all items added up. */
  bins: number[];
  /** rr items only (null without rr). */
  latencyMs: { p50: number; p99: number } | null;
  lostMessages: number | null;
  errors: string[];
  /** Commands as run, for the record. */
  commands: string[];
  /** TCP segments the iperf3 senders retransmitted (end-to-end TCP, inside any tunnel); null without tcp. */
  tcpRetransmits: number | null;
}

const RR_SCRIPT = fileURLToPath(new URL('./rr.ts', import.meta.url));

/** Waits until something listens on TCP port `port` in `ns` (iperf3 -J prints nothing until the end). */
async function waitListening(topo: Topology, ns: string, port: number, proc: ManagedProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!proc.running) throw new Error(`${proc.name} exited before listening on ${port}:\n${proc.tail(10)}`);
    const r = await topo.exec(ns, ['ss', '-Hltn', `sport = :${port}`], { allowFailure: true });
    if (r.code === 0 && r.stdout.trim() !== '') return;
    await sleep(100);
  }
  throw new Error(`nothing listens on port ${port} in ${ns} after ${timeoutMs} ms`);
}

interface IperfInterval { sum: { bytes: number; sender?: boolean } }
interface IperfEnd {
  sum_sent?: { retransmits?: number };
}

interface IperfReport {
  error?: string;
  intervals?: IperfInterval[];
  end?: IperfEnd;
  server_output_json?: { intervals?: IperfInterval[]; end?: IperfEnd };
}

/** Retransmissions counted by the sending side: the server's report for -R, else the client's own. */
export function senderRetransmits(report: IperfReport, reverse: boolean): number | undefined {
  return (reverse ? report.server_output_json?.end : report.end)?.sum_sent?.retransmits;
}

/** The receiver's 100 ms byte series: the client's own intervals for -R, else the server's. */
export function receiverBins(report: IperfReport): number[] {
  const own = report.intervals ?? [];
  const ownIsReceiver = own.length > 0 && own.every((iv) => iv.sum.sender === false);
  const ivs = ownIsReceiver ? own : (report.server_output_json?.intervals ?? []);
  return ivs.map((iv) => iv.sum.bytes);
}

/** Time Node + tsx need to start the rr client and connect, before its first message is due. */
export const RR_STARTUP_MS = 3000;

/**
 * Runs every item at once, starting at the wall-clock time `startEpochMs` (Date.now() scale; at
 * least RR_STARTUP_MS away when there is rr traffic). `onStart` runs right at the start (the
 * caller's counters and CPU meter), before any client sends.
 */
export async function runTraffic(
  topo: Topology, ep: Endpoints, items: readonly TrafficItem[], durationS: number, basePort: number,
  startEpochMs: number, onStart: () => Promise<void>,
): Promise<TrafficOutcome> {
  const out: TrafficOutcome = {
    payloadBytes: { up: 0, down: 0 }, bins: [], latencyMs: null, lostMessages: null, errors: [], commands: [], tcpRetransmits: null,
  };
  const servers: ManagedProcess[] = [];
  const series: number[][] = [];
  try {
    // Servers first, all of them listening before any client starts: the items run together.
    const ports = items.map((_, k) => basePort + k);
    for (const [k, item] of items.entries()) {
      const port = ports[k]!;
      const argv = item.kind === 'rr'
        ? [...ep.wrap, process.execPath, '--import', 'tsx', RR_SCRIPT, 'server', ep.serverHost, String(port)]
        : [...ep.wrap, 'iperf3', '-s', '-B', ep.serverHost, '-p', String(port), '-1', '-J', '-i', '0.1', '--idle-timeout', String(durationS + 60)];
      const p = topo.spawn(ep.serverNs, argv, { name: `${item.kind}-server-${k}`, cwd: REPO_ROOT, keepBytes: 4 * 1024 * 1024 });
      servers.push(p);
      out.commands.push(`${ep.serverNs}: ${argv.join(' ')}`);
      await waitListening(topo, ep.serverNs, port, p, 15_000);
    }

    const started = (async () => {
      await sleep(startEpochMs - Date.now());
      await onStart();
    })();
    const runs = items.map(async (item, k) => {
      const port = String(ports[k]!);
      if (item.kind === 'rr') {
        // Started early: it connects, then waits for startEpochMs itself.
        const argv = [...ep.wrap, process.execPath, '--import', 'tsx', RR_SCRIPT, 'client', ep.serverHost, port,
          String(item.sizeB), String(item.rateHz), String(durationS), String(Math.round(startEpochMs))];
        out.commands.push(`${ep.clientNs}: ${argv.join(' ')}`);
        const r = await topo.exec(ep.clientNs, argv, { allowFailure: true, timeoutMs: (durationS + 30) * 1000, cwd: REPO_ROOT });
        let rep: RrReport;
        try {
          rep = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as RrReport;
        } catch {
          throw new Error(`rr client (${r.code}): ${r.stderr.trim().slice(0, 300) || 'no report'}`);
        }
        if (rep.error) out.errors.push(`traffic[${k}] rr: ${rep.error}`);
        // Request bytes went up and echoes came down: half of the answered payload each way.
        const bytes = rep.bins.reduce((s, x) => s + x, 0);
        out.payloadBytes.up += bytes / 2;
        out.payloadBytes.down += bytes / 2;
        series.push(rep.bins);
        out.lostMessages = (out.lostMessages ?? 0) + rep.lost;
        // Several rr items: the worst figures (they run at once, over the same links).
        if (rep.latencyMs) {
          out.latencyMs = out.latencyMs
            ? { p50: Math.max(out.latencyMs.p50, rep.latencyMs.p50), p99: Math.max(out.latencyMs.p99, rep.latencyMs.p99) }
            : rep.latencyMs;
        }
        return;
      }
      await started;
      const argv = [...ep.wrap, 'iperf3', '-c', ep.serverHost, '-p', port, '-t', String(durationS), '-i', '0.1', '-J',
        '--get-server-output', '--connect-timeout', '5000'];
      if (item.kind === 'tcp') argv.push('-P', String(item.flows));
      else argv.push('-u', '-b', `${item.rateMbps}M`, '-l', '1200');
      if (item.direction === 'down') argv.push('-R');
      if (item.kind === 'tcp' && item.congestion) argv.push('-C', item.congestion);
      out.commands.push(`${ep.clientNs}: ${argv.join(' ')}`);
      const r = await topo.exec(ep.clientNs, argv, { allowFailure: true, timeoutMs: (durationS + 40) * 1000 });
      let rep: IperfReport;
      try {
        rep = JSON.parse(r.stdout) as IperfReport;
      } catch {
        throw new Error(`iperf3 (${r.code}): ${r.stderr.trim().slice(0, 300) || r.stdout.slice(0, 300)}`);
      }
      if (rep.error) throw new Error(`iperf3: ${rep.error}`);
      const bins = receiverBins(rep);
      if (bins.length === 0) throw new Error('iperf3 gave no receiver intervals');
      series.push(bins);
      out.payloadBytes[item.direction] += bins.reduce((s, x) => s + x, 0);
      const rtx = item.kind === 'tcp' ? senderRetransmits(rep, item.direction === 'down') : undefined;
      if (rtx !== undefined) out.tcpRetransmits = (out.tcpRetransmits ?? 0) + rtx;
    });
    await started;
    const settled = await Promise.allSettled(runs);
    settled.forEach((s, k) => {
      if (s.status === 'rejected') out.errors.push(`traffic[${k}] ${items[k]!.kind}: ${(s.reason as Error).message}`);
    });
  } finally {
    for (const p of servers) await topo.release(p).catch(() => undefined);
  }
  // A run of durationS has durationS*10 bins; iperf3 may add a short last one.
  out.bins = sumSeries(series).slice(0, Math.ceil((durationS * 1000) / BIN_MS));
  return out;
}
