// The edge's telemetry reporter on SimClock: adaptive rate (10/s while things change, every
// stable interval otherwise), batching while acknowledgements are outstanding, the bounded queue
// with counted drops, re-sending unacknowledged reports after a reconnection, keepalives and the
// backoff with jitter. The transport is an in-memory stand-in for the gRPC stream (the real one is
// exercised in telemetry-service.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimClock } from '../src/clock.js';
import { changeReason, CHANGE_THRESHOLDS } from '../src/uplink/change.js';
import { ReportQueue } from '../src/uplink/queue.js';
import { TelemetryReporter, type ReporterSettings, type UplinkHandlers, type UplinkTransport } from '../src/uplink/reporter.js';
import { buildSample } from '../src/uplink/sample.js';
import type { PathReport, ReportRequest, TelemetrySample } from '../src/uplink/types.js';

function path(over: Partial<PathReport> = {}): PathReport {
  return {
    carrier: 'lte-a', state: 'PATH_STATE_UP', transport: 'udp', rttMs: 50, minRttMs: 40, congestionMode: 'CONGESTION_MODE_UNSPECIFIED',
    lossRate: 0, goodputMbps: 10, queueBytes: 0, txBytes: 0, rxBytes: 0, ...over,
  };
}

function sample(over: Partial<PathReport> = {}, speedKmh?: number): TelemetrySample {
  return {
    atUnixMs: 0, sessionId: 7, paths: [path(over)],
    carriers: [{ carrier: 'lte-a', operatorName: 'Op', mcc: '208', mnc: '01', technology: 'lte', sinrDb: 10, cellId: 'a1', radioAtUnixMs: 0 }],
    motion: speedKmh === undefined ? undefined : { speedKmh, atUnixMs: 0 },
  };
}

/** A transport whose streams the test drives: it sees writes and decides when to acknowledge. */
class FakeTransport implements UplinkTransport {
  streams: { handlers: UplinkHandlers; writes: ReportRequest[]; closed: boolean }[] = [];
  opens = 0;
  autoAck = true;
  /** Highest seq "stored" by the fake cloud. */
  stored = 0;
  received: number[] = [];
  /** When set, acknowledgements come this long after the write (on the SimClock). */
  ackDelayUs: (() => number) | undefined;
  clock: SimClock | undefined;

  open(handlers: UplinkHandlers) {
    this.opens++;
    const s = { handlers, writes: [] as ReportRequest[], closed: false };
    this.streams.push(s);
    return {
      write: (req: ReportRequest) => {
        s.writes.push(req);
        for (const r of req.reports) {
          if (r.seq > this.stored) {
            this.received.push(r.seq);
            this.stored = r.seq;
          }
        }
        const upTo = this.stored;
        if (this.ackDelayUs && this.clock) this.clock.setTimer(this.ackDelayUs(), () => { if (!s.closed && this.autoAck) handlers.onAck(upTo); });
        else if (this.autoAck) queueMicrotask(() => { if (!s.closed) handlers.onAck(upTo); });
      },
      close: () => { s.closed = true; },
    };
  }

  close() {}

  get current() {
    const s = this.streams[this.streams.length - 1];
    assert.ok(s);
    return s;
  }
}

function reporter(sampler: () => TelemetrySample, settings: Partial<ReporterSettings> = {}) {
  const clock = new SimClock(0);
  const transport = new FakeTransport();
  transport.clock = clock;
  const r = new TelemetryReporter({ edgeId: 'edge-1', clock, transport, sample: sampler, settings, random: () => 0.5, bootId: 'boot-1' });
  return { clock, transport, r };
}

/** Advance in 10 ms steps, letting the microtask acknowledgements run in between. */
async function run(clock: SimClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 10) {
    clock.advance(10_000);
    await Promise.resolve();
    await Promise.resolve();
  }
}

test('change detection: relative RTT and goodput with floors, absolute loss, state, radio and speed', () => {
  const base = sample();
  assert.equal(changeReason(undefined, base), 'first');
  assert.equal(changeReason(base, sample({ rttMs: 55 })), undefined, '+10% RTT is noise');
  assert.match(changeReason(base, sample({ rttMs: 61 })) ?? '', /rtt/, '+22% and +11 ms');
  assert.equal(changeReason(sample({ rttMs: 5 }), sample({ rttMs: 8 })), undefined, '+60% but under the 5 ms floor');
  assert.match(changeReason(base, sample({ goodputMbps: 7 })) ?? '', /goodput/);
  assert.equal(changeReason(base, sample({ goodputMbps: 8 })), undefined, '-20% is under 25%');
  assert.match(changeReason(base, sample({ lossRate: CHANGE_THRESHOLDS.loss })) ?? '', /loss/);
  assert.match(changeReason(base, sample({ state: 'PATH_STATE_DOWN' })) ?? '', /state/);
  const cell = sample();
  const c0 = cell.carriers[0];
  assert.ok(c0);
  c0.cellId = 'b2';
  assert.match(changeReason(base, cell) ?? '', /cell/);
  c0.cellId = 'a1';
  c0.sinrDb = 6;
  assert.match(changeReason(base, cell) ?? '', /sinr/);
  assert.equal(changeReason(sample({}, 150), sample({}, 165)), 'high-speed', 'crossing 160 km/h counts even for +15');
  assert.equal(changeReason(sample({}, 200), sample({}, 215)), undefined);
  assert.equal(changeReason(sample({}, 200), sample({}, 230)), 'speed');
});

test('while things change: 10 reports per second, never more', async () => {
  let rtt = 50;
  const { clock, transport, r } = reporter(() => sample({ rttMs: (rtt *= 1.3) }));
  r.start();
  await run(clock, 3000);
  const s = r.stats();
  assert.ok(s.produced >= 29 && s.produced <= 31, `~30 reports in 3 s, got ${s.produced}`);
  assert.equal(transport.received.length, s.produced, 'every report reached the cloud');
  assert.equal(s.ackedSeq, s.produced);
  assert.equal(s.dropped, 0);
  r.stop();
});

test('when stable: one report per stable interval, the rest suppressed', async () => {
  const { clock, r } = reporter(() => sample(), { stableIntervalMs: 5000 });
  r.start();
  await run(clock, 20_000);
  const s = r.stats();
  // t = 0 (first), 5, 10, 15 s and possibly 20 s.
  assert.ok(s.produced >= 4 && s.produced <= 5, `got ${s.produced}`);
  assert.ok(s.suppressed >= 190, `samples taken at 10/s and suppressed: ${s.suppressed}`);
  r.stop();
});

test('a change after a stable period is reported within one sample interval', async () => {
  let rtt = 50;
  const { clock, r } = reporter(() => sample({ rttMs: rtt }));
  r.start();
  await run(clock, 2000);
  const before = r.stats().produced;
  rtt = 120;
  await run(clock, 100);
  assert.equal(r.stats().produced, before + 1);
  r.stop();
});

test('batching: reports produced while acknowledgements are outstanding go together, each once', async () => {
  let rtt = 50;
  const { clock, transport, r } = reporter(() => sample({ rttMs: (rtt *= 1.3) }), { maxUnackedBatches: 1, maxBatch: 8 });
  transport.autoAck = false;
  r.start();
  await run(clock, 950); // samples at 0, 100, ..., 900 ms: first batch of 1 written, 9 waiting
  assert.equal(transport.current.writes.length, 1);
  assert.equal(transport.current.writes[0]?.reports.length, 1);
  transport.current.handlers.onAck(1);
  // The next batch takes at most maxBatch of the waiting reports.
  assert.equal(transport.current.writes.length, 2);
  assert.deepEqual(transport.current.writes[1]?.reports.map((x) => x.seq), [2, 3, 4, 5, 6, 7, 8, 9]);
  transport.current.handlers.onAck(9);
  assert.deepEqual(transport.current.writes[2]?.reports.map((x) => x.seq), [10]);
  assert.equal(r.stats().queued, 1, 'acknowledged reports left the queue');
  r.stop();
});

test('bounded queue: the oldest reports are dropped and counted, the high-water mark is the capacity', async () => {
  let rtt = 50;
  const { clock, transport, r } = reporter(() => sample({ rttMs: (rtt *= 1.3) }), { queueReports: 20, ackTimeoutMs: 600_000, keepaliveMs: 600_000 });
  transport.autoAck = false;
  r.start();
  await run(clock, 4950); // 50 reports (0 .. 4900 ms), no acknowledgement
  const s = r.stats();
  assert.equal(s.produced, 50);
  assert.equal(s.queued, 20);
  assert.equal(s.queueHighWater, 20);
  assert.equal(s.dropped, 30);
  r.stop();
  const q = new ReportQueue(3);
  for (let i = 1; i <= 5; i++) q.push({ ...sample(), seq: i });
  assert.deepEqual(q.takeUnsent(10).map((x) => x.seq), [3, 4, 5]);
  assert.equal(q.dropped, 2);
  assert.throws(() => new ReportQueue(0), /positive integer/);
});

test('reconnection: unacknowledged reports are sent again on the new stream; backoff doubles with jitter and resets after an ack', async () => {
  let rtt = 50;
  const { clock, transport, r } = reporter(() => sample({ rttMs: (rtt *= 1.3) }), { initialBackoffMs: 500, maxBackoffMs: 2000 });
  transport.autoAck = false;
  r.start();
  await run(clock, 300); // reports 1..3 written or queued, none acknowledged
  assert.equal(transport.opens, 1);
  transport.current.handlers.onEnd('UNAVAILABLE: connection reset');
  assert.equal(r.stats().connected, false);
  await run(clock, 490); // random 0.5 -> jitter factor 1.0: exactly 500 ms
  assert.equal(transport.opens, 1, 'not before the backoff');
  await run(clock, 20);
  assert.equal(transport.opens, 2);
  const firstSeqs = transport.current.writes.flatMap((w) => w.reports.map((x) => x.seq));
  assert.equal(firstSeqs[0], 1, 'the new stream starts with the oldest unacknowledged report');
  transport.current.handlers.onEnd('UNAVAILABLE');
  await run(clock, 990);
  assert.equal(transport.opens, 2, 'second failure waits 1000 ms');
  await run(clock, 20);
  assert.equal(transport.opens, 3);
  transport.autoAck = true;
  transport.current.handlers.onAck(transport.stored);
  transport.current.handlers.onEnd('UNAVAILABLE');
  await run(clock, 510);
  assert.equal(transport.opens, 4, 'an acknowledgement reset the backoff to 500 ms');
  await run(clock, 1000);
  const s = r.stats();
  assert.equal(s.reconnects, 3);
  assert.equal(s.dropped, 0);
  assert.deepEqual(transport.received, Array.from({ length: s.produced }, (_, i) => i + 1), 'every report reached the cloud once, in order');
  r.stop();
});

test('keepalive when idle; no acknowledgement within the timeout reopens the stream', async () => {
  const { clock, transport, r } = reporter(() => sample(), { keepaliveMs: 1000, ackTimeoutMs: 3000, stableIntervalMs: 60_000 });
  r.start();
  await run(clock, 3500);
  assert.ok(r.stats().keepalivesSent >= 2, `keepalives: ${r.stats().keepalivesSent}`);
  assert.ok(transport.current.writes.some((w) => w.reports.length === 0), 'a keepalive is an empty batch');
  transport.autoAck = false;
  await run(clock, 5000);
  assert.ok(transport.opens >= 2, 'a silent cloud made the reporter reconnect');
  r.stop();
});

test('buildSample: path status and context snapshot become a report; unknown values stay absent', () => {
  const s = buildSample({
    nowUnixMs: 1234,
    carriers: [{ name: 'lte-a', operator: 'Cfg', mcc: '208', mnc: '01', technology: 'lte' }],
    session: {
      id: 9, peer: 'cloud', reorder: null,
      carriers: [{ name: 'lte-a', operator: 'Cfg', mcc: '208', mnc: '01', technology: 'lte' }],
      paths: [{
        id: 0, name: 'lte-a', state: 'up', transport: 'udp wwan0', txBytes: 10, rxBytes: 20, txPackets: 1, rxPackets: 2, txDataBytes: 0, rxDataBytes: 0,
        rttMs: 42, minRttMs: null, rateMbps: 3.5, inflightBytes: 1500, sendErrors: 0, lossRate: 0.01,
        controller: { dUs: 7000, cwnd: 30000, mode: 'window' },
      }],
    },
    transports: ['tcp'],
    context: { radio: [{ carrier: 'lte-a', operatorName: 'Radio Op', sinrDb: 12.5, cellId: '1A2B', technology: 'NR', atMs: 1000 }], motion: { speedKmh: 250, atMs: 1100 } },
  });
  const p = s.paths[0];
  assert.ok(p);
  assert.equal(p.state, 'PATH_STATE_UP');
  assert.equal(p.transport, 'tcp');
  assert.equal(p.rttMs, 42);
  assert.equal(p.minRttMs, undefined);
  assert.equal(p.s3DelayMs, 7);
  assert.equal(p.cwndBytes, 30000);
  assert.equal(p.congestionMode, 'CONGESTION_MODE_WINDOW');
  assert.equal(p.queueBytes, 1500);
  const c = s.carriers[0];
  assert.equal(c?.operatorName, 'Radio Op', 'the modem wins over the config');
  assert.equal(c?.technology, 'nr');
  assert.equal(c?.rsrpDbm, undefined);
  assert.equal(s.motion?.speedKmh, 250);
  assert.equal(s.sessionId, 9);
});

test('acknowledgement timeout adapts: a slow but steady cloud is kept, a silent one is left after the 6 s floor', async () => {
  let rtt = 50;
  const { clock, transport, r } = reporter(() => sample({ rttMs: (rtt = rtt > 400 ? 50 : rtt * 1.3) }), { ackTimeoutMs: 6000, maxAckTimeoutMs: 60_000 });
  // Acknowledgements 2-5 s late (an overloaded cloud), varying.
  let k = 0;
  transport.ackDelayUs = () => [2_000_000, 5_000_000, 3_000_000, 4_500_000][k++ % 4] ?? 0;
  r.start();
  await run(clock, 30_000);
  let s = r.stats();
  assert.equal(s.reconnects, 0, `no stream abandoned: ${JSON.stringify(s)}`);
  assert.ok(s.ackTimeoutMs > 6000, `timeout grew with the measured delays: ${s.ackTimeoutMs} ms`);
  assert.ok(s.ackDelayMs !== null && s.ackDelayMs > 1500);
  r.stop();

  // Fast acknowledgements, then silence (the carrier under the connection died).
  const fast = reporter(() => sample({ rttMs: (rtt = rtt > 400 ? 50 : rtt * 1.3) }), { ackTimeoutMs: 6000 });
  fast.r.start();
  await run(fast.clock, 3000);
  assert.equal(fast.r.stats().ackTimeoutMs, 6000, 'fast acknowledgements: the floor');
  fast.transport.autoAck = false;
  await run(fast.clock, 5500);
  assert.equal(fast.r.stats().reconnects, 0, 'not before 6 s');
  await run(fast.clock, 1500);
  s = fast.r.stats();
  assert.equal(s.reconnects, 1, 'given up at the floor');
  assert.equal(s.lossReasons['acknowledgement timeout'], 1);
  fast.r.stop();
});

test('a new stream without any acknowledgement yet gets the longer first-ack timeout (20 s), then is reopened', async () => {
  let rtt = 50;
  const { clock, transport, r } = reporter(() => sample({ rttMs: (rtt = rtt > 400 ? 50 : rtt * 1.3) }), { ackTimeoutMs: 6000, firstAckTimeoutMs: 20_000 });
  transport.autoAck = false;
  r.start();
  assert.equal(r.stats().ackTimeoutMs, 20_000);
  await run(clock, 19_000);
  assert.equal(r.stats().reconnects, 0, 'still waiting for the connection at 19 s');
  await run(clock, 2_000); // given up at 20.5 s (ticks every 500 ms), reopened 500 ms later
  const s = r.stats();
  assert.equal(s.reconnects, 1, JSON.stringify(s));
  assert.equal(s.lossReasons['acknowledgement timeout (new stream)'], 1);
  r.stop();
});
