// Simulated carrier links on a SimClock: a rate-limited FIFO queue with a byte limit, one-way
// delay, random loss and an up/down switch. Each direction is independent. The two ends are
// Paths, so a Session runs over them exactly as over UDP.
import type { Clock } from '../clock.js';
import type { Path } from '../path/path.js';

export interface SimLinkOptions {
  rateMbps: number;
  delayMs: number;
  /** Drop-tail queue limit in bytes. */
  queueBytes: number;
  lossPct?: number;
  /** Seed of the loss generator (deterministic). */
  seed?: number;
}

/** Small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Direction {
  private busyUntil = 0;
  /** Rate now, Mbit/s (a step change is a call to SimLink.setRate). */
  rateMbps: number;
  private readonly rand: () => number;
  delivered = 0;
  dropped = 0;
  deliveredBytes = 0;
  /** Drop everything sent this way from now on (a one-way outage; the other direction is unaffected). */
  blackhole = false;

  constructor(private readonly clock: Clock, private readonly link: SimLink, private readonly opts: SimLinkOptions, seed: number) {
    this.rand = prng(seed);
    this.rateMbps = opts.rateMbps;
  }

  carry(d: Buffer, to: SimEnd): void {
    const now = this.clock.nowUs();
    if (!this.link.up || this.blackhole) {
      this.dropped++;
      return;
    }
    const bytesPerUs = (this.rateMbps * 1e6) / 8 / 1e6;
    const start = Math.max(now, this.busyUntil);
    const backlog = (start - now) * bytesPerUs;
    if (backlog + d.length > this.opts.queueBytes) {
      this.dropped++;
      return;
    }
    this.busyUntil = start + d.length / bytesPerUs;
    const lost = (this.opts.lossPct ?? 0) > 0 && this.rand() * 100 < (this.opts.lossPct ?? 0);
    const copy = Buffer.from(d);
    this.clock.setTimer(this.busyUntil - now + this.opts.delayMs * 1000, () => {
      if (lost || !this.link.up) {
        this.dropped++;
        return;
      }
      this.delivered++;
      this.deliveredBytes += copy.length;
      to.receive(copy);
    });
  }
}

class SimEnd implements Path {
  peer!: SimEnd;
  private cb: (d: Buffer) => void = () => {};
  closed = false;

  constructor(readonly description: string, private readonly dir: Direction) {}

  send(d: Buffer): boolean {
    if (this.closed) return false;
    this.dir.carry(d, this.peer);
    return true;
  }

  receive(d: Buffer): void {
    if (!this.closed) this.cb(d);
  }

  onDatagram(cb: (d: Buffer) => void): void {
    this.cb = cb;
  }

  onError(): void {}

  close(): void {
    this.closed = true;
  }
}

export class SimLink {
  up = true;
  readonly a: Path;
  readonly b: Path;
  readonly aToB: Direction;
  readonly bToA: Direction;

  constructor(clock: Clock, readonly name: string, opts: SimLinkOptions) {
    const seed = opts.seed ?? 1;
    this.aToB = new Direction(clock, this, opts, seed);
    this.bToA = new Direction(clock, this, opts, seed + 1);
    const a = new SimEnd(`sim ${name} a->b`, this.aToB);
    const b = new SimEnd(`sim ${name} b->a`, this.bToA);
    a.peer = b;
    b.peer = a;
    this.a = a;
    this.b = b;
  }

  /** Change the rate of both directions from now on (what is queued drains at the old rate). */
  setRate(mbps: number): void {
    this.aToB.rateMbps = mbps;
    this.bToA.rateMbps = mbps;
  }
}
