// Time for the data plane. Everything that needs "now" or a timer receives a Clock, so the
// scheduler, the estimators and the reorder buffer run unchanged against SimClock in tests.
//
// Times are plain numbers in microseconds (monotonic, not wall time): 2^53 us is 285 years,
// so no BigInt is needed. The wire carries the low 32 bits (S3 timestamps wrap every ~71 min
// and are only ever subtracted from each other).

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Monotonic time in microseconds. */
  nowUs(): number;
  /** Run fn once after delayUs (>= 0). */
  setTimer(delayUs: number, fn: () => void): TimerHandle;
}

const hr0 = process.hrtime.bigint();

export const realClock: Clock = {
  nowUs: () => Number((process.hrtime.bigint() - hr0) / 1000n),
  setTimer(delayUs, fn) {
    const t = setTimeout(fn, Math.max(0, Math.ceil(delayUs / 1000)));
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};

interface SimTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A deterministic clock: time moves only when the test calls advance(). */
export class SimClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: SimTimer[] = [];

  constructor(startUs = 1_000_000) {
    this.t = startUs;
  }

  nowUs(): number {
    return this.t;
  }

  setTimer(delayUs: number, fn: () => void): TimerHandle {
    const timer: SimTimer = { at: this.t + Math.max(0, delayUs), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => { timer.cancelled = true; } };
  }

  /** Move time forward by us, firing due timers in time order (ties in creation order). */
  advance(us: number): void {
    const end = this.t + us;
    for (;;) {
      let next: SimTimer | undefined;
      for (const tm of this.timers) {
        if (tm.cancelled || tm.at > end) continue;
        if (!next || tm.at < next.at || (tm.at === next.at && tm.seq < next.seq)) next = tm;
      }
      if (!next) break;
      this.timers = this.timers.filter((x) => x !== next && !x.cancelled);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }

  pendingTimers(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
}

/** Low 32 bits of a microsecond time, as carried on the wire. */
export function wireTime(us: number): number {
  return us >>> 0;
}

/** Difference a - b of two 32-bit wire times, tolerant of one wrap. */
export function wireTimeDiff(a: number, b: number): number {
  return ((a - b) | 0);
}
