// The systems a scenario compares, each set up on a freshly built topology (same links, same
// seeds) and torn down after its run. Each one says where its traffic runs and which processes
// are its gateways (for CPU and memory).
//
//   braid              client ns -> edge gateway (all carriers) -> cloud gateway -> server ns
//   single-path-braid  the same with the edge gateway on the best carrier only
//   best-single        client ns -> edge (plain routing + NAT over the best carrier) -> cloud -> server ns
//   openvpn            client ns -> edge (OpenVPN client, UDP over the best carrier) -> cloud (OpenVPN server) -> server ns
//   mptcp              kernel MPTCP between the edge ns (client, one subflow per carrier) and the
//                      cloud ns (server on 198.18.0.1): MPTCP needs both ends, and those are the two
//                      hosts that sit on the carriers. Client and server namespaces are not involved.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startGateways, type Gateways } from '../../test/harness/gateways.js';
import { bucketPercentiles, histogramText, spreadVerdict, statusHistograms, type Percentiles } from './histogram.js';
import { ip } from '../../test/harness/netns.js';
import type { Topology } from '../../test/harness/topology.js';
import { makeOpenVpnCerts, startOpenVpn } from './openvpn.js';
import type { SystemName } from './scenario.js';
import type { Endpoints } from './traffic.js';

export interface SystemSetup {
  endpoints: Endpoints;
  /** Gateway process groups (name -> pgid) whose CPU and memory are the system's own. */
  groups: Record<string, number>;
  path: string;
  notes: string[];
  /** Reorder-buffer delay percentiles, when the system has one and exports it. */
  reorderDelayMs(): Promise<Percentiles | null>;
  /** Percentiles of the measured one-way delay spread between the paths in use (Braid, receive/delay-spread). */
  delaySpreadMs(): Promise<Percentiles | null>;
  /** What the gateways counted (Braid: per-path packets, retransmissions, redundant copies), as notes for the result. */
  engineNotes(): Promise<string[]>;
  /** Braid: a compact snapshot of the sender's paths and the receiver's reorder buffer, for --trace. */
  traceStatus?(): Promise<unknown>;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 40_000;

function pgid(p: { pid: number | undefined; name: string }): number {
  if (p.pid === undefined) throw new Error(`${p.name} has no pid`);
  return p.pid; // ManagedProcess makes each process its own group leader
}

/** Sends the edge's traffic to `dest` over carrier `k` instead of its preferred default route. */
async function routeVia(topo: Topology, dest: string, k: number): Promise<void> {
  await ip(topo.ns.edge, ['route', 'replace', `${dest}/32`, 'via', topo.addr.carrierEdgeSide(k), 'dev', topo.iface.edgeWan(k)]);
}

const noReorder = (): Promise<null> => Promise.resolve(null);
const noNotes = (): Promise<string[]> => Promise.resolve([]);

interface EngineStatus {
  sessions?: { engine?: { retransmitted?: number; redundantCopies?: unknown; lowLatency?: unknown }; relay?: unknown }[];
  paths?: { name?: string; sentPackets?: number; retransmitted?: number; [k: string]: unknown }[];
}

/**
 * The sending gateways' own counters at the end of the run, so that the overhead figure can be
 * explained (cross-path retransmissions, S2 duplicates, S4 copies) without a second run.
 */
async function gatewayEngineNotes(gw: Gateways): Promise<string[]> {
  const out: string[] = [];
  const cloud = (await gw.cloudStatus()) as unknown as EngineStatus;
  for (const s of cloud.sessions ?? []) {
    if (s.engine) out.push(`cloud engine counters: ${JSON.stringify(s.engine)}`);
    // The TCP relay's own repairs (bytesResent) are the other part of the overhead.
    if (s.relay) out.push(`cloud relay counters: ${JSON.stringify(s.relay)}`);
  }
  const edge = (await gw.edgeStatus()) as unknown as { engine?: unknown; reorder?: Record<string, unknown>; drops?: Record<string, number> };
  if (edge.engine) out.push(`edge engine counters: ${JSON.stringify(edge.engine)}`);
  // Duplicates among them: copies that arrived after another copy (spurious cross-path re-sends, S2 duplicates).
  if (edge.drops && Object.keys(edge.drops).length) out.push(`edge drop counters: ${JSON.stringify(edge.drops)}`);
  if (edge.reorder) out.push(`edge reorder counters: ${JSON.stringify({ ...edge.reorder, delayCounts: undefined, spreadCounts: undefined })}`);
  // Issue 4's target, from the same end-of-run status: the reorder delay against the spread it
  // should not exceed, and the two histograms behind the percentiles.
  const delays = statusHistograms(edge, cloud, 'delayCounts');
  const spreads = statusHistograms(edge, cloud, 'spreadCounts');
  const verdict = spreadVerdict(bucketPercentiles(delays), bucketPercentiles(spreads));
  if (verdict) out.push(verdict);
  const dh = histogramText(delays);
  if (dh) out.push(`reorder delay histogram (ms bucket: packets delivered, both receiving sides): ${dh}`);
  const sh = histogramText(spreads);
  if (sh) out.push(`path delay spread histogram (ms bucket: data packets arrived, both receiving sides): ${sh}`);
  const paths = (cloud.paths ?? []).map((p) => JSON.stringify(p));
  if (paths.length) out.push(`cloud paths at the end: ${paths.join(' ')}`);
  return out;
}

/** For --trace: per path what the cloud's sender believes and allows, and what the edge holds back. */
async function gatewayTraceStatus(gw: Gateways): Promise<unknown> {
  const [cloud, edge] = await Promise.all([gw.cloudStatus(), gw.edgeStatus()]);
  type P = { name: string; state: string; rateMbps: number; rttMs: number | null; minRttMs: number | null; inflightBytes: number; controller?: Record<string, unknown> };
  const paths = ((cloud as unknown as { paths?: P[] }).paths ?? []).map((p) => ({
    name: p.name, state: p.state, rateMbps: Math.round(p.rateMbps * 100) / 100,
    rttMs: p.rttMs === null ? null : Math.round(p.rttMs), minRttMs: p.minRttMs === null ? null : Math.round(p.minRttMs),
    inflight: p.inflightBytes, cap: p.controller?.['capBytes'] ?? null,
  }));
  const engine = ((cloud as unknown as EngineStatus).sessions ?? [])[0]?.engine as Record<string, unknown> | undefined;
  const r = (edge as unknown as { reorder?: Record<string, unknown> }).reorder;
  return {
    paths,
    queued: engine?.['queued'] ?? null, retransmitted: engine?.['retransmitted'] ?? null, droppedUnsent: engine?.['droppedUnsent'] ?? null,
    reorder: r ? { held: r['heldNow'], skipped: r['skipped'], lateRefused: r['lateRefused'], spreadUs: r['spreadUs'] } : null,
  };
}

/**
 * Reorder delay, or the delay spread between the paths, from the gateways' own histograms (both
 * receiving sides: the edge for downloads, the cloud for uploads), summed over the session. A
 * percentile is the upper bound of its bucket (REORDER_DELAY_BUCKETS_MS), so an upper estimate.
 */
async function gatewayPercentiles(gw: Gateways, key: 'delayCounts' | 'spreadCounts'): Promise<Percentiles | null> {
  const [edge, cloud] = await Promise.all([gw.edgeStatus(), gw.cloudStatus()]);
  return bucketPercentiles(statusHistograms(edge, cloud, key));
}

export async function setupSystem(system: SystemName, topo: Topology, best: number, dir: string): Promise<SystemSetup> {
  await mkdir(dir, { recursive: true });
  const a = topo.addr;
  const plain: Endpoints = { clientNs: topo.ns.client, serverNs: topo.ns.server, serverHost: a.server, wrap: [] };
  const bestName = `${topo.carriers[best]!.name} (carrier ${best})`;
  switch (system) {
    case 'braid':
    case 'single-path-braid': {
      const one = system === 'single-path-braid';
      const gw = await startGateways(topo, {
        dir,
        logLevel: 'warn',
        multipathDestinations: [`${a.server}/32`],
        ...(one ? { edge: { carriers: [{ name: topo.carriers[best]!.name, interface: topo.iface.edgeWan(best) }] } } : {}),
      });
      try {
        await gw.waitReady(READY_TIMEOUT_MS);
      } catch (err) {
        await gw.stop();
        throw err;
      }
      return {
        endpoints: plain,
        groups: { edge: pgid(gw.edge), cloud: pgid(gw.cloud) },
        path: one
          ? `client ${a.client} -> edge gateway (one path over ${bestName}) -> cloud gateway ${a.cloudPublic} -> server ${a.server}`
          : `client ${a.client} -> edge gateway (paths over all ${topo.carriers.length} carriers) -> cloud gateway ${a.cloudPublic} -> server ${a.server}`,
        notes: [],
        reorderDelayMs: () => gatewayPercentiles(gw, 'delayCounts'),
        delaySpreadMs: () => gatewayPercentiles(gw, 'spreadCounts'),
        engineNotes: () => gatewayEngineNotes(gw),
        traceStatus: () => gatewayTraceStatus(gw),
        stop: () => gw.stop(),
      };
    }
    case 'best-single': {
      await routeVia(topo, a.server, best);
      return {
        endpoints: plain, groups: {}, notes: [], reorderDelayMs: noReorder, delaySpreadMs: noReorder, engineNotes: noNotes, stop: () => Promise.resolve(),
        path: `client ${a.client} -> edge (plain routing, NAT) over ${bestName} only -> cloud (IP forwarding) -> server ${a.server}; no tunnel`,
      };
    }
    case 'openvpn': {
      // The OpenVPN client reaches its server over the best carrier; the tunnel carries the rest.
      await routeVia(topo, a.cloudPublic, best);
      await makeOpenVpnCerts(join(dir, 'certs'));
      const vpn = await startOpenVpn(topo, join(dir, 'certs'), dir);
      return {
        endpoints: plain,
        groups: { edge: pgid(vpn.client), cloud: pgid(vpn.server) },
        path: `client ${a.client} -> edge (OpenVPN client, UDP, AES-256-GCM, userspace) over ${bestName} -> cloud (OpenVPN server ${a.cloudPublic}:1194) -> server ${a.server}`,
        notes: [vpn.version],
        reorderDelayMs: noReorder, delaySpreadMs: noReorder,
        engineNotes: noNotes,
        stop: () => vpn.stop(),
      };
    }
    case 'mptcp': {
      const { edge, cloud } = topo.ns;
      for (const ns of [edge, cloud]) {
        await ip(ns, ['mptcp', 'endpoint', 'flush']);
        await ip(ns, ['mptcp', 'limits', 'set', 'subflow', '8', 'add_addr_accepted', '8']);
      }
      for (let i = 0; i < topo.carriers.length; i++) {
        // Each subflow leaves by its own carrier: source-address policy routing, like a
        // multi-homed host would have. Without it every subflow would follow the default route.
        await ip(edge, ['route', 'replace', 'default', 'via', a.carrierEdgeSide(i), 'dev', topo.iface.edgeWan(i), 'table', String(100 + i)]);
        await ip(edge, ['rule', 'add', 'from', a.edgeWan(i), 'lookup', String(100 + i), 'priority', String(1000 + i)]);
        // The initial subflow comes from wan0 (the default route); one more endpoint per other carrier.
        if (i > 0) await ip(edge, ['mptcp', 'endpoint', 'add', a.edgeWan(i), 'dev', topo.iface.edgeWan(i), 'subflow']);
      }
      return {
        endpoints: { clientNs: edge, serverNs: cloud, serverHost: a.cloudPublic, wrap: ['mptcpize', 'run'] },
        groups: {},
        path: `kernel MPTCP (mptcpize) from the edge ns (initial subflow on wan0, one more subflow endpoint per other carrier, source-routed) to the cloud ns ${a.cloudPublic}; no client/server ns`,
        notes: [],
        reorderDelayMs: noReorder, delaySpreadMs: noReorder,
        engineNotes: noNotes,
        stop: () => Promise.resolve(),
      };
    }
  }
}
