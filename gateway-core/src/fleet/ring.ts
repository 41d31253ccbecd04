// A fixed-capacity ring of recent items: the cloud keeps only so much history per carrier, so
// its memory is bounded by (edges x carriers x capacity) whatever the edges send.
export class Ring<T> {
  private buf: T[] = [];
  private start = 0;

  constructor(readonly capacity: number, items: readonly T[] = []) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`);
    for (const x of items) this.push(x);
  }

  get length(): number {
    return this.buf.length;
  }

  push(x: T): void {
    if (this.buf.length < this.capacity) {
      this.buf.push(x);
      return;
    }
    this.buf[this.start] = x;
    this.start = (this.start + 1) % this.capacity;
  }

  /** Oldest first. */
  toArray(): T[] {
    return this.start === 0 ? this.buf.slice() : [...this.buf.slice(this.start), ...this.buf.slice(0, this.start)];
  }

  /** The newest `n` items, oldest first. */
  last(n: number): T[] {
    const k = Math.min(n, this.buf.length);
    const out: T[] = new Array<T>(k);
    for (let i = 0; i < k; i++) out[i] = this.buf[(this.start + this.buf.length - k + i) % this.buf.length] as T;
    return out;
  }

  /** Whether any item held satisfies `pred`, without copying the ring. */
  some(pred: (x: T) => boolean): boolean {
    return this.buf.some(pred);
  }

  newest(): T | undefined {
    if (this.buf.length === 0) return undefined;
    return this.buf[(this.start + this.buf.length - 1) % this.buf.length];
  }
}
