// The admin API's answers (braid.v1.AdminService, proto/braid/v1/admin.proto), built from what
// telemetry already reads from a gateway: one view for metrics, dashboard and operators.
import type { EventLog } from '../telemetry/events.js';
import type { TelemetryView } from '../telemetry/view.js';

export interface AdminStatus {
  role: string;
  id: string;
  version: string;
  ready: boolean;
  uptimeS: number;
  sessions: number;
  pathsUp: number;
  pathsTotal: number;
  drops: Record<string, number>;
  tunnelRxPackets: number;
  tunnelTxPackets: number;
  tunnelRxBytes: number;
  tunnelTxBytes: number;
}

export interface AdminPath {
  sessionId: number;
  peer: string;
  id: number;
  name: string;
  state: string;
  transport: string;
  rttMs: number;
  rttKnown: boolean;
  rateMbps: number;
  txBytes: number;
  rxBytes: number;
  txPackets: number;
  rxPackets: number;
  inflightBytes: number;
  sendErrors: number;
  operator: string;
  mcc: string;
  mnc: string;
  technology: string;
  interface: string;
}

export interface AdminSession {
  id: number;
  peer: string;
  pathsUp: number;
  pathsTotal: number;
  txBytes: number;
  rxBytes: number;
  reorderDelivered: number;
  reorderSkipped: number;
}

export interface AdminEvent {
  seq: number;
  timeUnixMs: number;
  kind: string;
  sessionId: number;
  path: string;
  message: string;
  attributes: Record<string, string>;
}

export interface AdminApi {
  status(): AdminStatus;
  paths(): AdminPath[];
  sessions(): AdminSession[];
  events(afterSeq: number, limit: number): AdminEvent[];
  /** GetPolicy / SetPolicy (admin-policy.ts); without it they answer UNIMPLEMENTED. */
  policy?: import('./admin-policy.js').AdminPolicyApi;
}

export interface GatewayIdentity {
  role: 'edge' | 'cloud';
  id: string;
  version: string;
  ready(): boolean;
}

export function adminApiFrom(gw: GatewayIdentity, view: TelemetryView, events: EventLog, startedAt = Date.now()): AdminApi {
  const paths = (): AdminPath[] => view.sessions().flatMap((s) => s.paths.map((p, i) => {
    const c = s.carriers[i];
    return {
      sessionId: s.id, peer: s.peer, id: p.id, name: p.name, state: p.state, transport: p.transport ?? '',
      rttMs: p.rttMs ?? 0, rttKnown: p.rttMs !== null, rateMbps: p.rateMbps,
      txBytes: p.txBytes, rxBytes: p.rxBytes, txPackets: p.txPackets, rxPackets: p.rxPackets,
      inflightBytes: p.inflightBytes, sendErrors: p.sendErrors,
      operator: c?.operator ?? '', mcc: c?.mcc ?? '', mnc: c?.mnc ?? '', technology: c?.technology ?? '', interface: c?.interface ?? '',
    };
  }));
  return {
    status() {
      const all = paths();
      const t = view.tunnel();
      return {
        role: gw.role, id: gw.id, version: gw.version, ready: gw.ready(), uptimeS: (Date.now() - startedAt) / 1000,
        sessions: view.sessions().length, pathsUp: all.filter((p) => p.state === 'up').length, pathsTotal: all.length,
        drops: view.drops(), tunnelRxPackets: t.rxPackets, tunnelTxPackets: t.txPackets, tunnelRxBytes: t.rxBytes, tunnelTxBytes: t.txBytes,
      };
    },
    paths,
    sessions() {
      return view.sessions().map((s) => ({
        id: s.id, peer: s.peer,
        pathsUp: s.paths.filter((p) => p.state === 'up').length, pathsTotal: s.paths.length,
        txBytes: s.paths.reduce((a, p) => a + p.txBytes, 0), rxBytes: s.paths.reduce((a, p) => a + p.rxBytes, 0),
        reorderDelivered: s.reorder?.delivered ?? 0, reorderSkipped: s.reorder?.skipped ?? 0,
      }));
    },
    events(afterSeq, limit) {
      return events.list(afterSeq, limit > 0 ? limit : events.capacity).map((e) => ({
        seq: e.seq, timeUnixMs: e.time, kind: e.kind, sessionId: e.sessionId ?? 0, path: e.path ?? '', message: e.message,
        attributes: Object.fromEntries(Object.entries(e.attributes).map(([k, v]) => [k, String(v)])),
      }));
    },
  };
}
