// Two simulated Sessions (a and b, keys swapped) over SimLinks on a SimClock: each link's a end
// feeds a.receive and its b end b.receive, path i of each session sends on link i. The one
// builder the session-level unit tests share.
import { randomBytes } from 'node:crypto';
import type { SimClock } from '../src/clock.js';
import type { SimLink } from '../src/sim/link.js';
import type { Path } from '../src/path/path.js';
import { Session, type SessionOptions } from '../src/session/session.js';
import { RateWeightedScheduler } from '../src/schedule/rate-weighted.js';

export interface SimSessionPairOptions {
  /** Reorder hold (ms) when `options.reorder` is not given. Default 100. */
  holdMs?: number;
  /** Default 300. */
  pathDeadMs?: number;
  /** The S4 low-latency class; left to the Session's default (on) when not given. */
  lowLatency?: boolean;
  /** Options for both sides over the defaults (sessionId, scheduler, reorder, ...). */
  options?: Partial<SessionOptions>;
  /** Per-side overrides, over `options` (a's clock, policy, pmtu, ...). */
  a?: Partial<SessionOptions>;
  b?: Partial<SessionOptions>;
  /** [a's send key, b's send key]; random when not given. */
  keys?: [Buffer, Buffer];
  /**
   * What each side does with a delivered packet. Without one, the side collects the u32 at
   * byte `seqAt` of each delivered packet long enough to hold it in gotA / gotB.
   */
  deliverA?: (ip: Buffer) => void;
  deliverB?: (ip: Buffer) => void;
  /** Where the sequence number sits in delivered packets (28: a UDP payload, see ip-packets.ts). */
  seqAt?: number;
  /** The path a sends link i's datagrams on; link i's a end when not given. */
  pathA?: (link: SimLink, i: number) => Path;
}

export interface SimSessionPair {
  a: Session;
  b: Session;
  /** Sequence numbers a delivered (empty when `deliverA` was given). */
  gotA: number[];
  /** Sequence numbers b delivered (empty when `deliverB` was given). */
  gotB: number[];
}

export function simSessionPair(clock: SimClock, links: SimLink[], o: SimSessionPairOptions = {}): SimSessionPair {
  const [k1, k2] = o.keys ?? [randomBytes(32), randomBytes(32)];
  const seqAt = o.seqAt ?? 28;
  const gotA: number[] = [];
  const gotB: number[] = [];
  const base: Omit<SessionOptions, 'sendKey' | 'recvKey' | 'deliver'> = {
    sessionId: 9, pathNames: links.map((l) => l.name), clock,
    ...(o.lowLatency === undefined ? {} : { lowLatency: o.lowLatency }),
    scheduler: new RateWeightedScheduler(), keepaliveMs: 1000, ackIntervalMs: 10, ackEveryPackets: 8,
    pathDeadMs: o.pathDeadMs ?? 300, reorder: { holdMs: o.holdMs ?? 100, maxPackets: 8192, maxBytes: 16 << 20 }, replayWindow: 8192,
    ...o.options,
  };
  const collect = (got: number[]) => (p: Buffer): void => {
    if (p.length >= seqAt + 4) got.push(p.readUInt32BE(seqAt));
  };
  const a = new Session({ ...base, ...o.a, sendKey: k1, recvKey: k2, deliver: o.deliverA ?? collect(gotA) });
  const b = new Session({ ...base, ...o.b, sendKey: k2, recvKey: k1, deliver: o.deliverB ?? collect(gotB) });
  links.forEach((l, i) => {
    l.a.onDatagram((d) => a.receive(d));
    l.b.onDatagram((d) => b.receive(d));
    a.setTransport(i, o.pathA ? o.pathA(l, i) : l.a);
    b.setTransport(i, l.b);
  });
  return { a, b, gotA, gotB };
}
