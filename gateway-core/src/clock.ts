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
  fired: boolean;
}

/** (at, seq) order: time order, ties in creation order. */
function earlier(a: SimTimer, b: SimTimer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/**
 * A deterministic clock: time moves only when the test calls advance(). Pending timers are
 * kept in a binary heap (a simulation with thousands of packets in flight has thousands of
 * timers; scanning them all per firing made long simulations quadratic). Cancelled timers
 * are dropped when they reach the top.
 */
export class SimClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly heap: SimTimer[] = [];
  private live = 0;

  constructor(startUs = 1_000_000) {
    this.t = startUs;
  }

  nowUs(): number {
    return this.t;
  }

  setTimer(delayUs: number, fn: () => void): TimerHandle {
    const timer: SimTimer = { at: this.t + Math.max(0, delayUs), seq: this.seq++, fn, cancelled: false, fired: false };
    this.push(timer);
    this.live++;
    return {
      cancel: () => {
        if (timer.cancelled || timer.fired) return;
        timer.cancelled = true;
        this.live--;
      },
    };
  }

  /** Move time forward by us, firing due timers in time order (ties in creation order). */
  advance(us: number): void {
    const end = this.t + us;
    for (;;) {
      const top = this.heap[0];
      if (!top || top.at > end) break;
      this.pop();
      if (top.cancelled) continue;
      top.fired = true;
      this.live--;
      this.t = Math.max(this.t, top.at);
      top.fn();
    }
    this.t = end;
  }

  pendingTimers(): number {
    return this.live;
  }

  private push(x: SimTimer): void {
    const h = this.heap;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent] as SimTimer;
      if (!earlier(x, p)) break;
      h[i] = p;
      i = parent;
    }
    h[i] = x;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop() as SimTimer;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && earlier(h[r] as SimTimer, h[l] as SimTimer) ? r : l;
      if (!earlier(h[c] as SimTimer, last)) break;
      h[i] = h[c] as SimTimer;
      i = c;
    }
    h[i] = last;
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
