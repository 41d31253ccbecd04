// Recent per-path samples for the dashboard: one snapshot of counters per interval, kept for a
// few minutes in a ring, so a page opened late still draws the last minutes. Rates (throughput)
// are derived by the reader from successive counters; the gateway stores only what it has.
import type { TelemetryView } from './view.js';

export interface PathSample {
  /** "peer/path" on the cloud (several sessions), the path name on the edge. */
  key: string;
  name: string;
  sessionId: number;
  state: string;
  txBytes: number;
  rxBytes: number;
  txDataBytes: number;
  rxDataBytes: number;
  rttMs: number | null;
  rateMbps: number;
  sendErrors: number;
  /** Measured loss, percent; null when the session does not measure it. */
  lossPct: number | null;
}

export interface Sample {
  /** Unix time, milliseconds. */
  t: number;
  sessions: number;
  paths: PathSample[];
  drops: number;
  reorderSkipped: number;
}

export function takeSample(view: TelemetryView, multiSession: boolean, now = Date.now()): Sample {
  const sessions = view.sessions();
  const paths: PathSample[] = [];
  let skipped = 0;
  for (const s of sessions) {
    skipped += s.reorder?.skipped ?? 0;
    for (const p of s.paths) {
      paths.push({
        key: multiSession ? `${s.peer}/${p.name}` : p.name,
        name: p.name,
        sessionId: s.id,
        state: p.state,
        txBytes: p.txBytes,
        rxBytes: p.rxBytes,
        txDataBytes: p.txDataBytes,
        rxDataBytes: p.rxDataBytes,
        rttMs: p.rttMs === null ? null : Math.round(p.rttMs * 100) / 100,
        rateMbps: Math.round(p.rateMbps * 1000) / 1000,
        sendErrors: p.sendErrors,
        lossPct: typeof p.lossRate === 'number' ? Math.round(p.lossRate * 10000) / 100 : null,
      });
    }
  }
  const drops = Object.values(view.drops()).reduce((a, b) => a + b, 0);
  return { t: now, sessions: sessions.length, paths, drops, reorderSkipped: skipped };
}

export class SampleHistory {
  private readonly ring: Sample[] = [];
  private readonly listeners = new Set<(s: Sample) => void>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly view: TelemetryView, private readonly opts: { intervalMs: number; keep: number; multiSession: boolean }) {}

  start(): void {
    if (this.timer) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  sample(now = Date.now()): Sample {
    const s = takeSample(this.view, this.opts.multiSession, now);
    this.ring.push(s);
    if (this.ring.length > this.opts.keep) this.ring.splice(0, this.ring.length - this.opts.keep);
    for (const l of this.listeners) l(s);
    return s;
  }

  list(): Sample[] {
    return [...this.ring];
  }

  subscribe(fn: (s: Sample) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
