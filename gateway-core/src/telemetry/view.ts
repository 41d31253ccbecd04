// What telemetry reads from a gateway. The gateways implement it over their own state, so this
// module never reaches into edge or cloud internals and both sides export the same metrics.
import type { PathStatus } from '../session/session.js';

/** What the edge knows about a carrier (config + the inventory sent in Hello). */
export interface CarrierInfoView {
  name: string;
  interface?: string;
  operator?: string;
  mcc?: string;
  mnc?: string;
  /** lte, nr, umts, wifi, ... */
  technology?: string;
}

export interface ReorderView {
  delivered: number;
  deliveredLate: number;
  skipped: number;
  heldNow: number;
  heldBytes: number;
  /** How long delivered packets waited, per REORDER_DELAY_BUCKETS_MS bucket (+1 overflow). */
  delayCounts?: number[];
  /** One-way delay spread between the paths delivering data now, microseconds (receive/delay-spread). */
  spreadUs?: number;
  /** The spread seen by each arriving data packet, per REORDER_DELAY_BUCKETS_MS bucket (+1 overflow). */
  spreadCounts?: number[];
}

/** Split TCP (relay/, docs/tcp-relay.md): the session's relayed connections. */
export interface RelayView {
  /** Connections relayed now. */
  active: number;
  /** Connections opened since the session started. */
  opened: number;
  /** Connections reset, by reason (refused, limit, timeout, peer, ...). */
  resets: Partial<Record<string, number>>;
  /** Stream bytes sent to the peer for the first time, sent again (repair), and received in order. */
  bytesSent: number;
  bytesResent: number;
  bytesReceived: number;
}

export interface SessionView {
  id: number;
  /** The other side: the edge id (cloud) or the cloud's control address (edge). */
  peer: string;
  /** Path status in path-id order; carriers[i] describes paths[i]. */
  paths: PathStatus[];
  carriers: CarrierInfoView[];
  reorder: ReorderView | null;
  /** Data packets re-sent on another path after their path died (when the session counts them). */
  retransmitted?: number;
  /** Extra copies sent for redundancy: S2-8 duplicates of important packets, and the S4 class's copies beyond the first. */
  redundantCopies?: { s2: number; s4: number };
  /** The session's TCP relay, when it relays. */
  relay?: RelayView;
}

export interface TunnelView {
  rxPackets: number;
  txPackets: number;
  rxBytes: number;
  txBytes: number;
}

/** One carrier's S0 transport race (gateway-core/src/racing): its round, phase and recent decisions. */
export interface RaceView {
  carrier: string;
  round: number;
  /** racing, connected, abnormal, closed */
  phase: string;
  /** Recent decisions, oldest first; atMs counts from the racer's creation. */
  events: { atMs: number; round: number; event: string }[];
  sessionId?: number | undefined;
}

export interface TelemetryView {
  sessions(): SessionView[];
  /** Transport races, when the gateway runs them (the edge). */
  races?(): RaceView[];
  drops(): Record<string, number>;
  tunnel(): TunnelView;
}

/** Carrier attributes as in the OpenTelemetry semantic conventions (network.*). */
export function carrierAttributes(c: CarrierInfoView | undefined, fallbackName: string): Record<string, string> {
  const a: Record<string, string> = { 'network.carrier.name': c?.operator ?? c?.name ?? fallbackName };
  if (c?.mcc) a['network.carrier.mcc'] = c.mcc;
  if (c?.mnc) a['network.carrier.mnc'] = c.mnc;
  if (c?.technology) a['network.connection.subtype'] = c.technology;
  if (c?.interface) a['network.interface.name'] = c.interface;
  return a;
}
