// Builds a telemetry sample from what the gateway already exposes: the session's path status
// (telemetry/view.ts) and the S2-5 context snapshot (context/types.ts). No reaching into
// session internals; a missing value stays absent rather than becoming a misleading 0.
import type { ContextSnapshot } from '../context/types.js';
import type { PathStatus } from '../session/session.js';
import type { CarrierInfoView, SessionView } from '../telemetry/view.js';
import type { CarrierReport, CongestionModeValue, Motion, PathReport, PathStateValue, TelemetrySample } from './types.js';

const STATE: Record<string, PathStateValue> = { probing: 'PATH_STATE_PROBING', up: 'PATH_STATE_UP', down: 'PATH_STATE_DOWN' };
const MODE: Record<string, CongestionModeValue> = { window: 'CONGESTION_MODE_WINDOW', paced: 'CONGESTION_MODE_PACED' };

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function pathReport(p: PathStatus, transport: string | null | undefined): PathReport {
  const c = p.controller ?? {};
  const dUs = num(c['dUs']);
  const cwnd = num(c['cwnd']) ?? num(c['capBytes']);
  const mode = typeof c['mode'] === 'string' ? MODE[c['mode']] : undefined;
  return {
    carrier: p.name,
    state: STATE[p.state] ?? 'PATH_STATE_UNSPECIFIED',
    transport: transport ?? '',
    rttMs: p.rttMs ?? undefined,
    minRttMs: p.minRttMs ?? undefined,
    s3DelayMs: dUs === undefined ? undefined : dUs / 1000,
    cwndBytes: cwnd,
    congestionMode: mode ?? 'CONGESTION_MODE_UNSPECIFIED',
    lossRate: Math.min(1, Math.max(0, p.lossRate ?? 0)),
    goodputMbps: Math.max(0, p.rateMbps),
    queueBytes: Math.max(0, p.inflightBytes),
    txBytes: p.txBytes,
    rxBytes: p.rxBytes,
  };
}

function carrierReport(c: CarrierInfoView, ctx: ContextSnapshot | undefined): CarrierReport {
  const r = ctx?.radio.find((x) => x.carrier === c.name);
  return {
    carrier: c.name,
    operatorName: r?.operatorName ?? c.operator ?? '',
    mcc: r?.mcc ?? c.mcc ?? '',
    mnc: r?.mnc ?? c.mnc ?? '',
    technology: (r?.technology ?? c.technology ?? '').toLowerCase(),
    rsrpDbm: r?.rsrpDbm,
    rsrqDb: r?.rsrqDb,
    sinrDb: r?.sinrDb,
    cellId: r?.cellId ?? '',
    radioAtUnixMs: r?.atMs ?? 0,
  };
}

function motion(ctx: ContextSnapshot | undefined): Motion | undefined {
  const m = ctx?.motion;
  if (!m) return undefined;
  return { latitude: m.latitude, longitude: m.longitude, speedKmh: m.speedKmh, atUnixMs: m.atMs };
}

export interface SampleInput {
  session: SessionView | undefined;
  /** Carriers as configured, for when there is no session yet. */
  carriers: CarrierInfoView[];
  /** Transport kind per path id (S0 racing), when known. */
  transports?: (string | null | undefined)[];
  context?: ContextSnapshot | undefined;
  nowUnixMs: number;
}

export function buildSample(i: SampleInput): TelemetrySample {
  const carriers = i.session?.carriers.length ? i.session.carriers : i.carriers;
  return {
    atUnixMs: i.nowUnixMs,
    sessionId: i.session?.id ?? 0,
    paths: (i.session?.paths ?? []).map((p, k) => pathReport(p, i.transports?.[k] ?? p.transport)),
    carriers: carriers.map((c) => carrierReport(c, i.context)),
    motion: motion(i.context),
  };
}
