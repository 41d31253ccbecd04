// A sender and a receiver of the redundant class joined by simulated links on a SimClock: the
// in-process model the tests (and a benchmark) run the S4 engine against. Each link has a
// one-way delay, jitter (FIFO kept), random loss and duplication in both directions, outage
// windows, and a send-queue reading for the pacer. Feedback (NACK packets) travels back on the
// link it names, with the same delay and loss.
import type { Clock } from '../clock.js';
import { prng } from '../sim/link.js';
import { randomBytes } from 'node:crypto';
import { SessionCodec } from '../wire/codec.js';
import { Flags, PacketType, type NackBody } from '../wire/header.js';
import { LinkPacer, type PacerOptions } from './pacer.js';
import { RedundantReceiver, type RedundantReceiverOptions } from './receiver.js';
import { LinkSelector, type SelectionPolicy } from './selection.js';
import { RedundantSender, type RedundantSenderOptions } from './sender.js';

export interface SimRedundantLink {
  id: number;
  type: string;
  delayMs: number;
  jitterMs?: number;
  lossPct?: number;
  dupPct?: number;
  /** Negotiated rate, Mbit/s (pacer). Default 300. */
  rateMbps?: number;
  /** [startMs, endMs) windows, from the clock's time at creation, during which the link drops everything. */
  outages?: [number, number][];
  /** Send-queue headroom the pacer reads, packets. Default: plenty. */
  queueFreePackets?: () => number;
}

export interface SimPairOptions {
  clock: Clock;
  links: SimRedundantLink[];
  seed?: number;
  selection?: SelectionPolicy;
  pacer?: PacerOptions;
  receiver?: Partial<Omit<RedundantReceiverOptions, 'clock' | 'deliver' | 'sendNack'>>;
  sender?: Partial<Omit<RedundantSenderOptions, 'clock' | 'selector' | 'pacer' | 'transmit'>>;
  /** Feed each link's round trip as an idle probe sample at the start (as the session's probes would). */
  probeAtStart?: boolean;
  /** Probe the links the selection wants probed this often while data flows (0: never). Default 50 ms. */
  probeEveryMs?: number;
  /**
   * Carry data and NACKs as real sealed datagrams (SessionCodec, Flags.Redundant data, PacketType.Nack),
   * decoded on the other side: what the session would put on the wire. Payloads must be >= 20 bytes.
   */
  throughWire?: boolean;
}

export interface SimPair {
  sender: RedundantSender;
  receiver: RedundantReceiver;
  selector: LinkSelector;
  pacer: LinkPacer;
  /** Deliveries per sequence (exactly-once means every value is 1). */
  deliveries: Map<number, number>;
  /** Delivery order, for the in-order check. */
  order: number[];
  sentAtUs: Map<number, number>;
  deliveredAtUs: Map<number, number>;
  /** Copies carried / dropped per link (both directions). */
  carried: number;
  dropped: number;
  /** Send one message; returns its sequence. */
  send(payload: Buffer): number | undefined;
  /** Datagrams refused by the decoder (throughWire), by reason. */
  wireDrops: Map<string, number>;
}

export function createSimPair(o: SimPairOptions): SimPair {
  const clock = o.clock;
  const t0 = clock.nowUs();
  const rand = prng(o.seed ?? 1);
  const lastArrival = new Map<string, number>();
  const byId = new Map(o.links.map((l) => [l.id, l]));
  const selector = new LinkSelector(o.links.map((l) => ({ id: l.id, type: l.type })), o.selection);
  const pacer = new LinkPacer(o.links.map((l) => ({
    id: l.id, negotiatedBps: (l.rateMbps ?? 300) * 1e6, queueFreePackets: l.queueFreePackets ?? (() => 1000),
  })), o.pacer);

  const pair: SimPair = {
    sender: undefined as unknown as RedundantSender, // set below: the two ends refer to each other
    receiver: undefined as unknown as RedundantReceiver,
    selector, pacer,
    deliveries: new Map(), order: [], sentAtUs: new Map(), deliveredAtUs: new Map(), carried: 0, dropped: 0, wireDrops: new Map(),
    send(payload) {
      const seq = pair.sender.send(payload);
      if (seq !== undefined) pair.sentAtUs.set(seq, clock.nowUs());
      lastSendUs = clock.nowUs();
      if (!probing && probeEveryUs > 0) {
        probing = true;
        clock.setTimer(probeEveryUs, probeRound);
      }
      return seq;
    },
  };
  // The session's probes, as far as the class sees them: a probe and its echo each cross the
  // link (with its delay, loss and outages); an answered probe is a 'probe' delay sample.
  const probeEveryUs = (o.probeEveryMs ?? 50) * 1000;
  let lastSendUs = -Infinity;
  let probing = false;
  const probeRound = (): void => {
    const now = clock.nowUs();
    if (now - lastSendUs > 1_000_000) {
      probing = false;
      return;
    }
    for (const l of o.links) {
      if (!selector.probeWanted(l.id, now)) continue;
      carry(l.id, 'fwd', () => carry(l.id, 'rev', () => pair.sender.onDelaySample(l.id, clock.nowUs() - now, 'probe')), false);
    }
    clock.setTimer(probeEveryUs, probeRound);
  };

  const down = (l: SimRedundantLink, now: number): boolean =>
    (l.outages ?? []).some(([a, b]) => now - t0 >= a * 1000 && now - t0 < b * 1000);

  /** Carry one datagram over link `id` in direction `dir`, then run `arrive` (maybe twice). */
  const carry = (id: number, dir: 'fwd' | 'rev', arrive: () => void, count = true): boolean => {
    const l = byId.get(id);
    if (!l) return false;
    const now = clock.nowUs();
    if (down(l, now) || rand() * 100 < (l.lossPct ?? 0)) {
      if (count) pair.dropped++;
      return true; // it left; the link lost it
    }
    const key = `${id}${dir}`;
    const at = Math.max(Math.round(now + l.delayMs * 1000 + rand() * (l.jitterMs ?? 0) * 1000), lastArrival.get(key) ?? 0);
    lastArrival.set(key, at);
    const copies = count && rand() * 100 < (l.dupPct ?? 0) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      clock.setTimer(at - now + c * 100, () => {
        // A link that went down while the packet was on it loses it too.
        if (down(l, clock.nowUs())) {
          if (count) pair.dropped++;
          return;
        }
        if (count) pair.carried++;
        arrive();
      });
    }
    return true;
  };

  // Wire mode: one codec per direction and end, as the two sessions hold them.
  const kAB = randomBytes(32);
  const kBA = randomBytes(32);
  const codecA = new SessionCodec(7, kAB, kBA);
  const codecB = new SessionCodec(7, kBA, kAB);
  let pathSeq = 0;
  const refuse = (reason: string): void => {
    pair.wireDrops.set(reason, (pair.wireDrops.get(reason) ?? 0) + 1);
  };

  pair.receiver = new RedundantReceiver({
    ...o.receiver,
    clock,
    deliver: (seq) => {
      pair.deliveries.set(seq, (pair.deliveries.get(seq) ?? 0) + 1);
      pair.order.push(seq);
      if (!pair.deliveredAtUs.has(seq)) pair.deliveredAtUs.set(seq, clock.nowUs());
    },
    sendNack: (linkId: number, nack: NackBody) => {
      if (o.throughWire) {
        const dg = codecB.encodeNack(linkId, ++pathSeq, clock.nowUs() >>> 0, nack);
        carry(linkId, 'rev', () => {
          const r = codecA.decode(dg);
          if (!r.ok) return refuse(r.reason);
          if (r.packet.type !== PacketType.Nack) return refuse('bad-type');
          pair.sender.onNack(r.packet.header.pathId, r.packet.nack);
        });
        return;
      }
      const copy: NackBody = { ...nack, ranges: nack.ranges.map((r) => ({ ...r })) };
      carry(linkId, 'rev', () => pair.sender.onNack(linkId, copy));
    },
  });
  pair.sender = new RedundantSender({
    ...o.sender,
    clock, selector, pacer,
    transmit: (linkId, seq, payload, retransmit) => {
      if (!o.throughWire) return carry(linkId, 'fwd', () => pair.receiver.receive(linkId, seq, payload));
      const flags = Flags.Redundant | (retransmit ? Flags.Retransmit : 0);
      const dg = codecA.encodeData(linkId, ++pathSeq, flags, clock.nowUs() >>> 0, seq, payload);
      return carry(linkId, 'fwd', () => {
        const r = codecB.decode(dg);
        if (!r.ok) return refuse(r.reason);
        if (r.packet.type !== PacketType.Data || !(r.packet.header.flags & Flags.Redundant)) return refuse('bad-type');
        pair.receiver.receive(r.packet.header.pathId, r.packet.dataSeq, r.packet.payload);
      });
    },
  });
  if (o.probeAtStart ?? true) {
    for (const l of o.links) selector.onDelaySample(l.id, 2 * l.delayMs * 1000, 'probe', clock.nowUs());
  }
  return pair;
}

/** Percentile (0..100) of a list of numbers (nearest rank); Infinity entries count as the worst. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i] as number;
}
