// Path up/down/recovered events for the timeline, found by watching the sessions' path states
// a few times a second. Why not a callback from the session: the data plane stays free of
// telemetry code; the price is that a flap shorter than the poll interval is not seen, and an
// event's time is late by up to one interval.
import type { RaceView, TelemetryView } from './view.js';

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

export interface RaceDecision {
  carrier: string;
  round: number;
  phase: string;
  event: string;
  sessionId: number | undefined;
}

/**
 * New decisions of the S0 transport races (each racer keeps its last few), found the same way:
 * by comparing with what the previous poll saw. `onRound` is told when a carrier's race round
 * begins and ends (a new round, or the race settled), so a round can be one span.
 */
export class RaceWatcher {
  private readonly seen = new Map<string, Set<string>>();
  private readonly rounds = new Map<string, { round: number; open: boolean }>();

  constructor(
    private readonly view: TelemetryView,
    private readonly onDecision: (d: RaceDecision) => void,
    private readonly onRound: (carrier: string, round: number, what: 'start' | 'end', r: RaceView) => void,
  ) {}

  poll(): void {
    const races = this.view.races?.() ?? [];
    for (const r of races) {
      const prev = this.rounds.get(r.carrier);
      if (!prev || prev.round !== r.round) {
        if (prev?.open) this.onRound(r.carrier, prev.round, 'end', r);
        this.onRound(r.carrier, r.round, 'start', r);
        this.rounds.set(r.carrier, { round: r.round, open: true });
      }
      const seen = this.seen.get(r.carrier) ?? new Set<string>();
      const now = new Set<string>();
      for (const e of r.events) {
        const key = `${e.round}|${e.atMs}|${e.event}`;
        now.add(key);
        if (!seen.has(key)) this.onDecision({ carrier: r.carrier, round: e.round, phase: r.phase, event: e.event, sessionId: r.sessionId });
      }
      this.seen.set(r.carrier, now);
      const cur = this.rounds.get(r.carrier);
      if (cur?.open && r.phase !== 'racing') {
        cur.open = false;
        this.onRound(r.carrier, r.round, 'end', r);
      }
    }
  }
}
