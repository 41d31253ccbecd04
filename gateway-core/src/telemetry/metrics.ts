// The gateway's metrics, read from the gateway's own state at collection time (observable
// instruments): nothing is counted twice and the data plane pays nothing per packet for
// telemetry. One snapshot of the view serves all instruments of one collection.
//
// Names are OpenTelemetry style (dots); Prometheus sees them with underscores and unit suffixes
// (see docs/observability.md for the table, deploy/grafana/braid-dashboard.json uses them).
import { REORDER_DELAY_BUCKETS_MS } from '../receive/reorder.js';
import type { Attributes, Histogram, Meter } from '@opentelemetry/api';
import { carrierAttributes, type SessionView, type TelemetryView } from './view.js';

/** OTel instrument names, exported so that tests and docs can list them. */
export const METRIC = {
  pathRtt: 'braid.path.rtt',
  pathMinRtt: 'braid.path.min_rtt',
  pathDeliveryRate: 'braid.path.delivery_rate',
  pathInflight: 'braid.path.inflight',
  pathUp: 'braid.path.up',
  pathSentBytes: 'braid.path.sent.bytes',
  pathReceivedBytes: 'braid.path.received.bytes',
  pathSentPackets: 'braid.path.sent.packets',
  pathReceivedPackets: 'braid.path.received.packets',
  pathPayloadSentBytes: 'braid.path.payload.sent.bytes',
  pathPayloadReceivedBytes: 'braid.path.payload.received.bytes',
  pathSendErrors: 'braid.path.send_errors',
  pathLossRate: 'braid.path.loss_rate',
  pathDelay: 'braid.path.cc.delay',
  pathWindow: 'braid.path.cc.window',
  pathPaced: 'braid.path.cc.paced',
  retransmitted: 'braid.session.retransmitted',
  sessions: 'braid.sessions',
  reorderDelivered: 'braid.reorder.delivered',
  reorderLate: 'braid.reorder.delivered_late',
  reorderSkipped: 'braid.reorder.skipped',
  reorderHeld: 'braid.reorder.held',
  reorderDelay: 'braid.reorder.delay.packets',
  delaySpread: 'braid.reorder.spread',
  delaySpreadPackets: 'braid.reorder.spread.packets',
  redundantCopies: 'braid.session.redundant_copies',
  relayStreams: 'braid.relay.streams',
  relayOpened: 'braid.relay.opened',
  relayResets: 'braid.relay.resets',
  relayBytes: 'braid.relay.bytes',
  drops: 'braid.drops',
  tunnelPackets: 'braid.tunnel.packets',
  tunnelBytes: 'braid.tunnel.bytes',
  rpcDuration: 'braid.control.rpc.duration',
  events: 'braid.events',
} as const;

export interface GatewayInstruments {
  /** Control-plane call latency, seconds; side 'client' (edge) or 'server' (cloud). */
  recordRpc(method: string, side: 'client' | 'server', seconds: number, grpcStatus: number): void;
  countEvent(kind: string): void;
}

function pathAttributes(s: SessionView, i: number): Attributes {
  const p = s.paths[i];
  const name = p?.name ?? String(i);
  return {
    'braid.session.id': String(s.id),
    'braid.peer': s.peer,
    'braid.path.id': i,
    'braid.path.name': name,
    ...carrierAttributes(s.carriers[i], name),
  };
}

/**
 * Counts per REORDER_DELAY_BUCKETS_MS bucket (+1 overflow) as cumulative counts with their
 * upper bound ('+Inf' for the overflow), the way a Prometheus histogram's buckets read.
 */
function cumulativeBuckets(counts: readonly number[], emit: (cumulative: number, le: string) => void): void {
  let cum = 0;
  counts.forEach((n, i) => {
    cum += n;
    emit(cum, i < REORDER_DELAY_BUCKETS_MS.length ? String(REORDER_DELAY_BUCKETS_MS[i]) : '+Inf');
  });
}

export function registerGatewayMetrics(meter: Meter, view: TelemetryView): GatewayInstruments {
  const g = (name: string, unit: string, description: string) => meter.createObservableGauge(name, { unit, description });
  const c = (name: string, unit: string, description: string) => meter.createObservableCounter(name, { unit, description });

  const rtt = g(METRIC.pathRtt, 'ms', 'Smoothed round-trip time of the path');
  const minRtt = g(METRIC.pathMinRtt, 'ms', 'Lowest round-trip time seen on the path');
  const rate = g(METRIC.pathDeliveryRate, 'By/s', 'Delivery rate estimate of the path');
  const inflight = g(METRIC.pathInflight, 'By', 'Bytes sent on the path and not yet acknowledged');
  const up = g(METRIC.pathUp, '1', '1 when the path is up, 0 when probing or down');
  const sentBytes = c(METRIC.pathSentBytes, 'By', 'Wire bytes sent on the path');
  const recvBytes = c(METRIC.pathReceivedBytes, 'By', 'Wire bytes received on the path');
  const sentPackets = c(METRIC.pathSentPackets, '{packet}', 'Datagrams sent on the path');
  const recvPackets = c(METRIC.pathReceivedPackets, '{packet}', 'Datagrams received on the path');
  const paySent = c(METRIC.pathPayloadSentBytes, 'By', 'IP payload bytes sent on the path (goodput, excluding headers and control)');
  const payRecv = c(METRIC.pathPayloadReceivedBytes, 'By', 'IP payload bytes received on the path');
  const sendErrors = c(METRIC.pathSendErrors, '{error}', 'Failed sends on the path');
  const lossRate = g(METRIC.pathLossRate, '1', 'Measured loss ratio of the path (0..1)');
  const delay = g(METRIC.pathDelay, 'ms', 'Last one-way delay sample D of the S3 congestion controller');
  const window = g(METRIC.pathWindow, 'By', 'Congestion window (S3 cwnd, or the in-flight cap of the default controller)');
  const paced = g(METRIC.pathPaced, '1', '1 when the S3 controller is in paced mode, 0 in window mode');
  const retransmitted = c(METRIC.retransmitted, '{packet}', 'Data packets re-sent on another path after their path died');
  const sessions = g(METRIC.sessions, '{session}', 'Sessions held by this gateway');
  const delivered = c(METRIC.reorderDelivered, '{packet}', 'Packets delivered by the reorder buffer');
  const late = c(METRIC.reorderLate, '{packet}', 'Packets delivered after their slot was given up (out of order)');
  const skipped = c(METRIC.reorderSkipped, '{packet}', 'Sequence numbers given up as lost by the reorder buffer');
  const held = g(METRIC.reorderHeld, '{packet}', 'Packets held in the reorder buffer now');
  const reorderDelay = c(METRIC.reorderDelay, '{packet}',
    'Packets delivered by the reorder buffer that waited at most braid.reorder.delay.le_ms (cumulative, like a Prometheus histogram)');
  // The reorder delay's yardstick (issue 4: reorder delay p99 <= spread + 5 ms), same buckets so
  // that the two histograms can be compared bucket by bucket.
  const spreadNow = g(METRIC.delaySpread, 'ms', 'One-way delay spread between the paths delivering data now (largest minus smallest smoothed one-way delay, measured at this receiver)');
  const spreadPackets = c(METRIC.delaySpreadPackets, '{packet}',
    'Data packets that arrived while the delay spread between the paths was at most braid.reorder.spread.le_ms (cumulative, like a Prometheus histogram)');
  const copies = c(METRIC.redundantCopies, '{packet}', 'Extra copies sent for redundancy (braid.redundancy.kind: s2 duplicates, s4 class)');
  const relayStreams = g(METRIC.relayStreams, '{connection}', 'TCP connections relayed now (split TCP, docs/tcp-relay.md)');
  const relayOpened = c(METRIC.relayOpened, '{connection}', 'TCP connections the relay opened');
  const relayResets = c(METRIC.relayResets, '{connection}', 'Relayed TCP connections reset, by braid.relay.reason');
  const relayBytes = c(METRIC.relayBytes, 'By', 'Relayed stream bytes, by braid.relay.kind: sent (first time), resent (repair), received (in order)');
  const drops = c(METRIC.drops, '{packet}', 'Datagrams and packets dropped, by reason');
  const tunPackets = c(METRIC.tunnelPackets, '{packet}', 'Packets through the TUN device, by direction');
  const tunBytes = c(METRIC.tunnelBytes, 'By', 'Bytes through the TUN device, by direction');

  meter.addBatchObservableCallback((r) => {
    const all = view.sessions();
    r.observe(sessions, all.length);
    for (const s of all) {
      s.paths.forEach((p, i) => {
        const a = pathAttributes(s, i);
        if (p.rttMs !== null) r.observe(rtt, p.rttMs, a);
        if (p.minRttMs !== null) r.observe(minRtt, p.minRttMs, a);
        r.observe(rate, (p.rateMbps * 1e6) / 8, a);
        r.observe(inflight, p.inflightBytes, a);
        r.observe(up, p.state === 'up' ? 1 : 0, a);
        r.observe(sentBytes, p.txBytes, a);
        r.observe(recvBytes, p.rxBytes, a);
        r.observe(sentPackets, p.txPackets, a);
        r.observe(recvPackets, p.rxPackets, a);
        r.observe(paySent, p.txDataBytes, a);
        r.observe(payRecv, p.rxDataBytes, a);
        r.observe(sendErrors, p.sendErrors, a);
        if (typeof p.lossRate === 'number') r.observe(lossRate, p.lossRate, a);
        const cc = p.controller ?? {};
        if (typeof cc['dUs'] === 'number' && cc['dUs'] > 0) r.observe(delay, cc['dUs'] / 1000, a);
        const win = typeof cc['cwnd'] === 'number' ? cc['cwnd'] : cc['capBytes'];
        if (typeof win === 'number' && Number.isFinite(win)) r.observe(window, win, a);
        if (typeof cc['mode'] === 'string') r.observe(paced, cc['mode'] === 'paced' ? 1 : 0, a);
      });
      if (s.retransmitted !== undefined) r.observe(retransmitted, s.retransmitted, { 'braid.session.id': String(s.id), 'braid.peer': s.peer });
      if (s.reorder) {
        const a = { 'braid.session.id': String(s.id), 'braid.peer': s.peer };
        r.observe(delivered, s.reorder.delivered, a);
        r.observe(late, s.reorder.deliveredLate, a);
        r.observe(skipped, s.reorder.skipped, a);
        r.observe(held, s.reorder.heldNow, a);
        if (s.reorder.delayCounts) {
          cumulativeBuckets(s.reorder.delayCounts, (n, le) => r.observe(reorderDelay, n, { ...a, 'braid.reorder.delay.le_ms': le }));
        }
        if (s.reorder.spreadUs !== undefined) r.observe(spreadNow, s.reorder.spreadUs / 1000, a);
        if (s.reorder.spreadCounts) {
          cumulativeBuckets(s.reorder.spreadCounts, (n, le) => r.observe(spreadPackets, n, { ...a, 'braid.reorder.spread.le_ms': le }));
        }
      }
      if (s.redundantCopies) {
        const a = { 'braid.session.id': String(s.id), 'braid.peer': s.peer };
        r.observe(copies, s.redundantCopies.s2, { ...a, 'braid.redundancy.kind': 's2' });
        r.observe(copies, s.redundantCopies.s4, { ...a, 'braid.redundancy.kind': 's4' });
      }
      if (s.relay) {
        const a = { 'braid.session.id': String(s.id), 'braid.peer': s.peer };
        r.observe(relayStreams, s.relay.active, a);
        r.observe(relayOpened, s.relay.opened, a);
        for (const [reason, n] of Object.entries(s.relay.resets)) if (n !== undefined) r.observe(relayResets, n, { ...a, 'braid.relay.reason': reason });
        r.observe(relayBytes, s.relay.bytesSent, { ...a, 'braid.relay.kind': 'sent' });
        r.observe(relayBytes, s.relay.bytesResent, { ...a, 'braid.relay.kind': 'resent' });
        r.observe(relayBytes, s.relay.bytesReceived, { ...a, 'braid.relay.kind': 'received' });
      }
    }
    for (const [reason, n] of Object.entries(view.drops())) r.observe(drops, n, { 'braid.drop.reason': reason });
    const t = view.tunnel();
    r.observe(tunPackets, t.rxPackets, { 'network.io.direction': 'receive' });
    r.observe(tunPackets, t.txPackets, { 'network.io.direction': 'transmit' });
    r.observe(tunBytes, t.rxBytes, { 'network.io.direction': 'receive' });
    r.observe(tunBytes, t.txBytes, { 'network.io.direction': 'transmit' });
  }, [rtt, minRtt, rate, inflight, up, sentBytes, recvBytes, sentPackets, recvPackets, paySent, payRecv, sendErrors, sessions,
    lossRate, delay, window, paced, retransmitted,
    delivered, late, skipped, held, reorderDelay, spreadNow, spreadPackets, copies, relayStreams, relayOpened, relayResets, relayBytes, drops, tunPackets, tunBytes]);

  const rpc: Histogram = meter.createHistogram(METRIC.rpcDuration, {
    unit: 's',
    description: 'Control-plane gRPC call latency',
    advice: { explicitBucketBoundaries: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] },
  });
  const events = meter.createCounter(METRIC.events, { unit: '{event}', description: 'Timeline events, by kind' });
  return {
    recordRpc: (method, side, seconds, grpcStatus) =>
      rpc.record(seconds, { 'rpc.system': 'grpc', 'rpc.method': method, 'braid.rpc.side': side, 'rpc.grpc.status_code': grpcStatus }),
    countEvent: (kind) => events.add(1, { 'braid.event.kind': kind }),
  };
}
