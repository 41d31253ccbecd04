// The cloud's memory of its edges: per edge, what its stream acknowledged (boot id, highest
// sequence stored), where it is and how fast it goes; per carrier of each edge, a bounded ring of
// recent samples (path measurements joined with the carrier's radio state).
import type { TelemetryReport } from '../uplink/types.js';
import { Ring } from './ring.js';

/** One carrier of one edge at one instant. */
export interface CarrierSample {
  atMs: number;
  /** up, down, probing, or '' when the report had no path for this carrier. */
  state: string;
  rttMs?: number | undefined;
  lossRate?: number | undefined;
  goodputMbps?: number | undefined;
  sinrDb?: number | undefined;
  rsrpDbm?: number | undefined;
  /** "mcc-mnc-cellid" when all three are known. */
  cell?: string | undefined;
}

export interface EdgeRecord {
  bootId: string;
  ackedSeq: number;
  /** Receive time of the newest report (cloud clock), ms since the epoch. */
  lastSeenMs: number;
  speedKmh?: number | undefined;
  /** When speedKmh was measured (edge clock), ms since the epoch. */
  speedAtMs?: number | undefined;
  latitude?: number | undefined;
  longitude?: number | undefined;
  carriers: Map<string, Ring<CarrierSample>>;
}

/**
 * A sample as persisted: [atMs, state, rttMs, lossRate, goodputMbps, sinrDb, rsrpDbm, cell], null
 * for absent values. Positional, because key names repeated over 10^5 samples made the state file
 * (and the time to write it) several times larger.
 */
export type SampleTuple = [number, string, number | null, number | null, number | null, number | null, number | null, string | null];

const toTuple = (s: CarrierSample): SampleTuple =>
  [s.atMs, s.state, s.rttMs ?? null, s.lossRate ?? null, s.goodputMbps ?? null, s.sinrDb ?? null, s.rsrpDbm ?? null, s.cell ?? null];
const fromTuple = (t: SampleTuple): CarrierSample => ({
  atMs: t[0], state: t[1], rttMs: t[2] ?? undefined, lossRate: t[3] ?? undefined, goodputMbps: t[4] ?? undefined,
  sinrDb: t[5] ?? undefined, rsrpDbm: t[6] ?? undefined, cell: t[7] ?? undefined,
});

/** What is persisted (FleetStateStore). */
export interface FleetStateDocument {
  format: 'braid.fleet-state.v1';
  savedAtMs: number;
  edges: Record<string, Omit<EdgeRecord, 'carriers'> & { carriers: Record<string, SampleTuple[]> }>;
  /** The overlays last derived, per edge and source (so a restart does not re-announce or forget them). */
  overlays: Record<string, Record<string, unknown>>;
}

export interface IngestResult {
  /** Highest sequence stored for the batch's boot id (what the edge gets acknowledged). */
  ackedSeq: number;
  stored: number;
  /** Reports already stored before (re-sent after a reconnection). */
  duplicates: number;
  /** Sequence numbers skipped (reports the edge dropped from its queue). */
  gaps: number;
}

const STATE_NAME: Record<string, string> = { PATH_STATE_UP: 'up', PATH_STATE_DOWN: 'down', PATH_STATE_PROBING: 'probing' };

export function cellKey(mcc: string, mnc: string, cellId: string): string | undefined {
  return mcc && mnc && cellId ? `${mcc}-${mnc}-${cellId}` : undefined;
}

export class FleetHistory {
  readonly edges = new Map<string, EdgeRecord>();

  constructor(readonly samplesPerCarrier: number, readonly maxCarriersPerEdge = 64) {}

  /** Stores a validated batch; reports at or below the edge's acknowledged sequence are skipped. */
  ingest(edgeId: string, bootId: string, reports: readonly TelemetryReport[], nowMs: number): IngestResult {
    let e = this.edges.get(edgeId);
    if (!e || e.bootId !== bootId) {
      // A new run of the edge: sequence numbers start again; the carriers' history stays.
      e = { bootId, ackedSeq: 0, lastSeenMs: nowMs, carriers: e?.carriers ?? new Map(), speedKmh: e?.speedKmh, speedAtMs: e?.speedAtMs };
      this.edges.set(edgeId, e);
    }
    const r: IngestResult = { ackedSeq: e.ackedSeq, stored: 0, duplicates: 0, gaps: 0 };
    for (const rep of reports) {
      if (rep.seq <= e.ackedSeq) {
        r.duplicates++;
        continue;
      }
      r.gaps += rep.seq - e.ackedSeq - 1;
      e.ackedSeq = rep.seq;
      this.store(e, rep);
      r.stored++;
    }
    e.lastSeenMs = nowMs;
    r.ackedSeq = e.ackedSeq;
    return r;
  }

  private store(e: EdgeRecord, rep: TelemetryReport): void {
    const m = rep.motion;
    if (m?.speedKmh !== undefined) {
      e.speedKmh = m.speedKmh;
      e.speedAtMs = m.atUnixMs || rep.atUnixMs;
    }
    if (m?.latitude !== undefined && m.longitude !== undefined) {
      e.latitude = m.latitude;
      e.longitude = m.longitude;
    }
    const radio = new Map(rep.carriers.map((c) => [c.carrier, c]));
    const names = new Set([...rep.paths.map((p) => p.carrier), ...radio.keys()]);
    const paths = new Map(rep.paths.map((p) => [p.carrier, p]));
    for (const name of names) {
      let ring = e.carriers.get(name);
      if (!ring) {
        if (e.carriers.size >= this.maxCarriersPerEdge) continue;
        ring = new Ring<CarrierSample>(this.samplesPerCarrier);
        e.carriers.set(name, ring);
      }
      const p = paths.get(name);
      const c = radio.get(name);
      ring.push({
        atMs: rep.atUnixMs,
        state: p ? (STATE_NAME[p.state] ?? '') : '',
        rttMs: p?.rttMs,
        lossRate: p?.lossRate,
        goodputMbps: p?.goodputMbps,
        sinrDb: c?.sinrDb,
        rsrpDbm: c?.rsrpDbm,
        cell: c ? cellKey(c.mcc, c.mnc, c.cellId) : undefined,
      });
    }
  }

  toDocument(overlays: Record<string, Record<string, unknown>>, nowMs: number): FleetStateDocument {
    const edges: FleetStateDocument['edges'] = {};
    for (const [id, e] of this.edges) {
      const { carriers, ...rest } = e;
      edges[id] = { ...rest, carriers: Object.fromEntries([...carriers].map(([n, ring]) => [n, ring.toArray().map(toTuple)])) };
    }
    return { format: 'braid.fleet-state.v1', savedAtMs: nowMs, edges, overlays };
  }

  /** Replaces the history with a saved document's. */
  restore(doc: FleetStateDocument): void {
    this.edges.clear();
    for (const [id, e] of Object.entries(doc.edges)) {
      const carriers = new Map<string, Ring<CarrierSample>>();
      for (const [n, samples] of Object.entries(e.carriers)) carriers.set(n, new Ring(this.samplesPerCarrier, samples.map(fromTuple)));
      this.edges.set(id, { ...e, carriers });
    }
  }
}
