// Anti-replay window (RFC 6479 style sliding bitmap), one per path and direction. A path is a
// FIFO carrier link, so reordering within one path is small; the window still tolerates some.
// check() is called only after the AEAD tag verified, so an attacker cannot move the window.

export class ReplayWindow {
  private readonly bits: Uint32Array;
  private readonly size: number;
  private top = -1; // highest sequence accepted so far

  constructor(size = 8192) {
    // Round up to a multiple of 32 bits.
    this.size = Math.max(64, Math.ceil(size / 32) * 32);
    this.bits = new Uint32Array(this.size / 32);
  }

  /** True and records seq when it is new and inside the window; false for a replay or too old. */
  accept(seq: number): boolean {
    if (seq > this.top) {
      const advance = seq - this.top;
      if (advance >= this.size) {
        this.bits.fill(0);
      } else {
        for (let s = this.top + 1; s < seq; s++) this.clear(s);
      }
      this.top = seq;
      this.set(seq);
      return true;
    }
    if (this.top - seq >= this.size) return false;
    if (this.isSet(seq)) return false;
    this.set(seq);
    return true;
  }

  private idx(seq: number): [number, number] {
    const bit = seq % this.size;
    return [bit >>> 5, 1 << (bit & 31)];
  }

  private set(seq: number): void {
    const [w, m] = this.idx(seq);
    this.bits[w] = (this.bits[w] as number) | m;
  }

  private clear(seq: number): void {
    const [w, m] = this.idx(seq);
    this.bits[w] = (this.bits[w] as number) & ~m;
  }

  private isSet(seq: number): boolean {
    const [w, m] = this.idx(seq);
    return ((this.bits[w] as number) & m) !== 0;
  }
}
