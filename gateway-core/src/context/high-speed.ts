// S2-12 hookup: watches a context source and reports when the vehicle crosses the high-speed
// threshold (>= 160 km/h by default), in either direction. The edge turns that into the
// session's high-speed mode; the watch itself only decides, so it is testable without a session.
import { isHighSpeed } from './composite.js';
import type { ContextSnapshot } from './types.js';

export class HighSpeedWatch {
  private state = false;

  constructor(
    private readonly snapshot: () => ContextSnapshot,
    private readonly thresholdKmh: number,
    private readonly onSwitch: (on: boolean, speedKmh: number | undefined) => void,
  ) {}

  get on(): boolean {
    return this.state;
  }

  /** Call on each context change (and periodically, so a stale speed switches the mode off). */
  check(): void {
    const snap = this.snapshot();
    const on = isHighSpeed(snap, this.thresholdKmh);
    if (on === this.state) return;
    this.state = on;
    this.onSwitch(on, snap.motion?.speedKmh);
  }
}
