// Path up/down/recovered events for the timeline, found by watching the sessions' path states
// a few times a second. Why not a callback from the session: the data plane stays free of
// telemetry code; the price is that a flap shorter than the poll interval is not seen, and an
// event's time is late by up to one interval.
import type { TelemetryView } from './view.js';

export interface PathTransition {
  kind: 'path.up' | 'path.down' | 'path.recovered';
  sessionId: number;
  peer: string;
  pathId: number;
  path: string;
  from: string;
  to: string;
}

export class PathWatcher {
  private readonly last = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly view: TelemetryView, private readonly onTransition: (t: PathTransition) => void) {}

  start(intervalMs: number): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.poll(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Compares the current path states with the previous poll; exported for tests. */
  poll(): void {
    const seen = new Set<string>();
    for (const s of this.view.sessions()) {
      s.paths.forEach((p, i) => {
        const key = `${s.id}/${i}`;
        seen.add(key);
        const before = this.last.get(key) ?? 'probing';
        this.last.set(key, p.state);
        if (before === p.state) return;
        let kind: PathTransition['kind'] | undefined;
        if (p.state === 'up') kind = before === 'down' ? 'path.recovered' : 'path.up';
        else if (p.state === 'down' && before === 'up') kind = 'path.down';
        if (kind) this.onTransition({ kind, sessionId: s.id, peer: s.peer, pathId: i, path: p.name, from: before, to: p.state });
      });
    }
    for (const k of [...this.last.keys()]) if (!seen.has(k)) this.last.delete(k);
  }
}
