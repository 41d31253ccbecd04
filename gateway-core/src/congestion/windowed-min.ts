// Minimum of a signal over a sliding time window, kept in a few time slots so memory and
// work stay constant however many samples arrive. Used for the base (uncongested) delay; its
// mirror, WindowedMax, for the longest gap between arrivals and the deepest queue seen.

interface Slot {
  startUs: number;
  min: number;
}

export class WindowedMin {
  private readonly slots: Slot[] = [];
  private readonly slotUs: number;

  constructor(readonly windowUs: number, slotCount = 8) {
    this.slotUs = windowUs / slotCount;
  }

  /** `expire` false keeps old slots for now (the caller knows the newer samples are not representative). */
  add(v: number, nowUs: number, expire = true): void {
    const last = this.slots[this.slots.length - 1];
    if (last && nowUs - last.startUs < this.slotUs) {
      if (v < last.min) last.min = v;
    } else {
      this.slots.push({ startUs: nowUs, min: v });
    }
    // Slots age out only against newer samples: an idle path (no samples) keeps its last
    // base delay instead of forgetting it, so idleness alone never moves the threshold.
    while (expire && this.slots.length > 1 && nowUs - (this.slots[0] as Slot).startUs > this.windowUs) this.slots.shift();
  }

  /** The windowed minimum, Infinity before the first sample. */
  get(): number {
    let m = Infinity;
    for (const s of this.slots) if (s.min < m) m = s.min;
    return m;
  }
}

/** Maximum of a signal over a sliding time window: a WindowedMin of its negation, with the same slots. */
export class WindowedMax {
  private readonly negated: WindowedMin;

  constructor(windowUs: number, slotCount = 8) {
    this.negated = new WindowedMin(windowUs, slotCount);
  }

  add(v: number, nowUs: number): void {
    this.negated.add(-v, nowUs);
  }

  /** The windowed maximum, -Infinity before the first sample. */
  get(): number {
    return -this.negated.get();
  }
}
