// The reporter's bounded queue: reports wait here until the cloud acknowledges them. When it is
// full the oldest report goes (the newest describes the present, which is what the cloud acts
// on); every such drop is counted. Nothing here grows without bound.
import type { TelemetryReport } from './types.js';

export class ReportQueue {
  private items: TelemetryReport[] = [];
  /** Reports dropped because the queue was full. */
  dropped = 0;
  /** Most reports held at once. */
  highWater = 0;
  /** Reports with seq <= this have been written to the current stream. */
  private sentUpTo = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity must be a positive integer, got ${capacity}`);
  }

  get length(): number {
    return this.items.length;
  }

  push(r: TelemetryReport): void {
    if (this.items.length >= this.capacity) {
      this.items.shift();
      this.dropped++;
    }
    this.items.push(r);
    if (this.items.length > this.highWater) this.highWater = this.items.length;
  }

  /** Removes every report with seq <= ackedSeq (acknowledgements are cumulative). */
  ack(ackedSeq: number): number {
    let n = 0;
    while (n < this.items.length && (this.items[n]?.seq ?? Infinity) <= ackedSeq) n++;
    if (n > 0) this.items = this.items.slice(n);
    return n;
  }

  /** Up to `max` reports not yet written to the current stream, oldest first; marks them written. */
  takeUnsent(max: number): TelemetryReport[] {
    const out: TelemetryReport[] = [];
    for (const r of this.items) {
      if (out.length >= max) break;
      if (r.seq > this.sentUpTo) out.push(r);
    }
    const last = out[out.length - 1];
    if (last) this.sentUpTo = last.seq;
    return out;
  }

  hasUnsent(): boolean {
    const last = this.items[this.items.length - 1];
    return last !== undefined && last.seq > this.sentUpTo;
  }

  /** A new stream: everything still held (unacknowledged) is sent again. */
  rewind(): void {
    this.sentUpTo = 0;
  }
}
