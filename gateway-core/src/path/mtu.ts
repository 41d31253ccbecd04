// Path MTU discovery without ICMP (packetization-layer PMTUD, RFC 4821/8899 style). Carriers and
// their middleboxes often drop ICMP "fragmentation needed", so the classic discovery black-holes
// big packets. Instead each path sends padded probes (the wire format's probe has a padding field)
// of a chosen datagram size with DF set, and the peer's acknowledgement proves that size passes.
// A binary search between a size known to pass (floor) and the largest worth trying (ceiling)
// finds the path MTU in about log2((ceiling - floor) / precision) rounds; a size is declared too
// big only after `attempts` unanswered probes, so one random loss does not shrink the MTU. The
// tunnel MTU is the minimum over the live paths (tunnelMtu below), so a client packet fits on any
// path the scheduler picks.
//
// The search owns no socket: the owner (the session) sends a probe of the asked size and reports
// its acknowledgement (or a local EMSGSIZE) back, so it runs unchanged on a SimClock.
import type { Clock, TimerHandle } from '../clock.js';

export interface PathMtuOptions {
  clock: Clock;
  /** A datagram size assumed to pass everywhere (IPv6's 1280 minus IP/UDP headers is a safe floor). */
  floor: number;
  /** The largest datagram size worth trying (the interface MTU minus IP/UDP headers). */
  ceiling: number;
  /** Stop when the unknown interval is at most this many bytes (default 8). */
  precision?: number;
  /** How long to wait for a probe's acknowledgement (a few RTTs; default 500 ms). */
  probeTimeoutMs?: number;
  /** Unanswered probes of one size before it counts as too big (default 2). */
  attempts?: number;
  /** Search again this long after it ended, to find a path that grew (default 10 min; 0: never). */
  researchIntervalMs?: number;
  /** Send a padded probe making a datagram of exactly `size` bytes; returns its token (e.g. the path sequence) or undefined if it could not be sent. */
  sendProbe(size: number): number | undefined;
  /** Called whenever the confirmed MTU changes. */
  onMtu?(mtu: number): void;
  /** Called each time a search ends, with the MTU it settled on (the owner acts on settled values only). */
  onSettled?(mtu: number): void;
}

export interface PathMtuStatus {
  mtu: number;
  searching: boolean;
  low: number;
  high: number;
  probing: number | null;
  probesSent: number;
  probesLost: number;
}

export class PathMtuSearch {
  private readonly clock: Clock;
  private readonly precision: number;
  private readonly timeoutUs: number;
  private readonly attempts: number;
  private readonly researchUs: number;
  /** Largest size confirmed to pass. */
  private low: number;
  /** Smallest size known (or assumed) not to pass, plus one: the search interval is [low, high). */
  private high: number;
  private probeSize: number | undefined;
  private probeToken: number | undefined;
  private losses = 0;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private probesSent = 0;
  private probesLost = 0;
  /** Whether this search already tried the ceiling (tried first: most paths pass the full size). */
  private triedTop = false;

  constructor(private readonly opts: PathMtuOptions) {
    if (!(opts.floor > 0 && opts.ceiling >= opts.floor)) throw new RangeError(`path MTU search needs 0 < floor <= ceiling, got ${opts.floor}..${opts.ceiling}`);
    this.clock = opts.clock;
    this.precision = Math.max(1, opts.precision ?? 8);
    this.timeoutUs = (opts.probeTimeoutMs ?? 500) * 1000;
    this.attempts = Math.max(1, opts.attempts ?? 2);
    this.researchUs = (opts.researchIntervalMs ?? 600_000) * 1000;
    this.low = opts.floor;
    this.high = opts.ceiling + 1;
  }

  /** The largest datagram size confirmed to pass (the floor until something larger is). */
  get mtu(): number {
    return this.low;
  }

  get searching(): boolean {
    return this.probeSize !== undefined;
  }

  start(): void {
    if (this.stopped) return;
    this.next();
  }

  /** The peer acknowledged the probe with this token. */
  acked(token: number): void {
    if (this.stopped || token !== this.probeToken || this.probeSize === undefined) return;
    this.timer?.cancel();
    const size = this.probeSize;
    this.probeSize = undefined;
    this.probeToken = undefined;
    this.losses = 0;
    if (size > this.low) {
      this.low = size;
      this.opts.onMtu?.(this.low);
    }
    this.next();
  }

  /** The local stack refused the probe (EMSGSIZE: larger than the interface allows). */
  tooBig(size: number): void {
    if (this.stopped) return;
    if (size < this.high) this.high = size;
    if (this.probeSize === size) {
      this.timer?.cancel();
      this.probeSize = undefined;
      this.probeToken = undefined;
      this.losses = 0;
      this.next();
    }
  }

  /**
   * Big packets stopped getting through (e.g. the route changed to a smaller MTU): fall back to
   * the floor and search again. The owner calls this when large datagrams are lost while small
   * ones pass.
   */
  reset(ceiling = this.opts.ceiling): void {
    if (this.stopped) return;
    this.timer?.cancel();
    this.probeSize = undefined;
    this.probeToken = undefined;
    this.losses = 0;
    const changed = this.low !== this.opts.floor;
    this.low = this.opts.floor;
    this.high = Math.max(this.low, ceiling) + 1;
    this.triedTop = false;
    if (changed) this.opts.onMtu?.(this.low);
    this.next();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  status(): PathMtuStatus {
    return {
      mtu: this.low, searching: this.searching, low: this.low, high: this.high - 1,
      probing: this.probeSize ?? null, probesSent: this.probesSent, probesLost: this.probesLost,
    };
  }

  private next(): void {
    if (this.stopped) return;
    if (this.high - 1 - this.low <= this.precision) {
      this.opts.onSettled?.(this.low);
      if (this.stopped) return;
      // Done. Look again later: the path may have grown (new cell, new route).
      if (this.researchUs > 0) {
        this.timer = this.clock.setTimer(this.researchUs, () => {
          this.high = this.opts.ceiling + 1;
          this.triedTop = false;
          this.next();
        });
      }
      return;
    }
    // Try the top of a fresh interval first: most paths pass the full size, and one probe settles
    // it; otherwise bisect.
    let size = Math.floor((this.low + this.high) / 2);
    if (!this.triedTop) {
      this.triedTop = true;
      size = this.high - 1;
    }
    this.probe(size);
  }

  private probe(size: number): void {
    this.probeSize = size;
    this.probesSent++;
    const token = this.opts.sendProbe(size);
    this.probeToken = token;
    // Not sent (no route right now): same as unanswered, retried after the timeout.
    this.timer = this.clock.setTimer(this.timeoutUs, () => this.timedOut(size));
  }

  private timedOut(size: number): void {
    if (this.stopped || this.probeSize !== size) return;
    this.probesLost++;
    this.losses++;
    if (this.losses < this.attempts) {
      this.probe(size);
      return;
    }
    this.losses = 0;
    this.probeSize = undefined;
    this.probeToken = undefined;
    this.high = size;
    this.next();
  }
}

/**
 * The tunnel MTU: the smallest path MTU among the live paths, minus what Braid adds to an IP packet
 * (its header, timestamps, data body and AEAD tag), so a client packet fits on any path. With no
 * live path, `fallback` (the configured tunnel MTU).
 */
export function tunnelMtu(livePathMtus: readonly number[], overhead: number, fallback: number): number {
  if (livePathMtus.length === 0) return fallback;
  return Math.min(...livePathMtus) - overhead;
}
