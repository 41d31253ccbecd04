// The link emulator's side of the S2-5 "emulator" context source: a JSON file, rewritten every
// periodMs (write to a temporary name, then rename, so a reader never sees half a file), holding
// what modems and a GPS on the emulated vehicle would report now:
//
//   { "writtenAtMs": 1763860000000,
//     "radio": [{ "carrier": "a", "technology": "lte", "rsrpDbm": -97.5, "rsrqDb": -10.2,
//                 "sinrDb": 11.4, "cellId": "0A1B2C31", "atMs": ... }, ...],
//     "motion": { "latitude": 39.9, "longitude": 116.4, "speedKmh": 300, "atMs": ... } }
//
// Radio values come from each carrier's model (modelRadio: the same name, seed and duration as
// the carrier's modelCarrier traces, so SINR falls when the emulated capacity falls and the cell
// changes at the model's handovers); the clock starts at startMs, which the caller sets to the
// emulators' start, and loops with the traces. The edge reads the file with
// `context.sources: [emulator]`, `context.emulator.file` (gateway-core/src/context/emulator.ts).
import { renameSync, writeFileSync } from 'node:fs';
import { modelRadio, modelSpeedKmh, type RadioTrack } from './models.js';

export interface FeedCarrier {
  /** The edge's carrier name (carriers[].name). */
  carrier: string;
  model: string;
  seed: number;
  /** As passed to modelCarrier (default 120 s). */
  durationS?: number;
  /** The SIM's network, as a modem would report it (models describe radio, not operators). */
  operatorName?: string;
  mcc?: string;
  mnc?: string;
}

/** Speed over time: a constant, or points { atS, kmh } joined linearly (held after the last). */
export type SpeedProfile = number | { atS: number; kmh: number }[];

export interface FeedOptions {
  file: string;
  carriers: FeedCarrier[];
  /** Default: the first carrier model's speed (models describe a vehicle), else none. */
  speedKmh?: SpeedProfile;
  /** Start of the track and course over ground (default Beijing South, 150 degrees). */
  start?: { latitude: number; longitude: number; courseDeg: number };
  periodMs?: number;
  /** Time zero of the models, ms since the epoch (default now). */
  startMs?: number;
  now?: () => number;
}

export function speedAt(profile: SpeedProfile, tS: number): number {
  if (typeof profile === 'number') return profile;
  if (profile.length === 0) throw new Error('speed profile: needs at least one point');
  let prev = profile[0]!;
  if (tS <= prev.atS) return prev.kmh;
  for (const p of profile.slice(1)) {
    if (tS <= p.atS) return prev.kmh + ((p.kmh - prev.kmh) * (tS - prev.atS)) / (p.atS - prev.atS);
    prev = p;
  }
  return prev.kmh;
}

export interface ContextFeed {
  /** The file's content now (also what the last write put there). */
  current(): unknown;
  /** Writes once now (the timer writes every periodMs). */
  write(): void;
  stop(): void;
}

export function startContextFeed(o: FeedOptions): ContextFeed {
  const now = o.now ?? Date.now;
  const startMs = o.startMs ?? now();
  const periodMs = o.periodMs ?? 500;
  const tracks: { c: FeedCarrier; track: RadioTrack; loopMs: number }[] = o.carriers.map((c) => ({
    c, track: modelRadio(c.model, c.seed, c.durationS ?? 120), loopMs: Math.round((c.durationS ?? 120) * 1000),
  }));
  const first = o.carriers[0];
  const speed: SpeedProfile | undefined = o.speedKmh ?? (first ? modelSpeedKmh(first.model) : undefined);
  const start = o.start ?? { latitude: 39.8652, longitude: 116.3786, courseDeg: 150 };
  // Position by integrating the speed along the course (1 s steps are plenty for a display).
  let distM = 0;
  let distAtS = 0;
  const distanceAt = (tS: number): number => {
    if (speed === undefined) return 0;
    for (; distAtS + 1 <= tS; distAtS++) distM += speedAt(speed, distAtS + 0.5) / 3.6;
    return distM + (speedAt(speed, tS) / 3.6) * (tS - distAtS);
  };
  let content: unknown = {};
  const build = (): unknown => {
    const t = now();
    const elapsedMs = Math.max(0, t - startMs);
    const radio = tracks.map(({ c, track, loopMs }) => {
      const s = track.samples[Math.floor((elapsedMs % loopMs) / track.stepMs)] ?? track.samples[track.samples.length - 1]!;
      const operator = { operatorName: c.operatorName, mcc: c.mcc, mnc: c.mnc };
      return {
        carrier: c.carrier, ...Object.fromEntries(Object.entries(operator).filter(([, v]) => v !== undefined)),
        technology: track.technology, rsrpDbm: s.rsrpDbm, rsrqDb: s.rsrqDb, sinrDb: s.sinrDb, cellId: s.cellId, atMs: t,
      };
    });
    const out: Record<string, unknown> = { writtenAtMs: t, radio };
    if (speed !== undefined) {
      const tS = elapsedMs / 1000;
      const d = distanceAt(tS);
      const rad = (start.courseDeg * Math.PI) / 180;
      out.motion = {
        latitude: start.latitude + (d * Math.cos(rad)) / 111_320,
        longitude: start.longitude + (d * Math.sin(rad)) / (111_320 * Math.cos((start.latitude * Math.PI) / 180)),
        speedKmh: speedAt(speed, tS),
        atMs: t,
      };
    }
    return out;
  };
  const write = (): void => {
    content = build();
    const tmp = `${o.file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(content) + '\n');
    renameSync(tmp, o.file);
  };
  write();
  const timer = setInterval(write, periodMs);
  timer.unref();
  return { current: () => content, write, stop: () => clearInterval(timer) };
}
