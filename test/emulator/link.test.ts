// The link model on a simulated clock: trace consumption like mm-link, queue limits, seeded
// loss, delay, outages and on/off periods. Plus trace parsing, spec validation and the models.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SimClock } from '@braid/gateway-core';
import { createTopology } from '../harness/topology.js';
import { LinkDirection, type LinkDirectionConfig } from './link.js';
import { MODEL_NAMES, modelCarrier, modelOutages } from './models.js';
import { validateCarrierEmulation } from './spec.js';
import { constantRateTrace, parseMahimahi, traceMeanMbps } from './trace.js';

const MS = 1000;

function link(cfg: Partial<LinkDirectionConfig> = {}): { clock: SimClock; l: LinkDirection } {
  const clock = new SimClock();
  const l = new LinkDirection({ trace: [1], delayMs: 0, lossPct: 0, outages: [], seed: 1, ...cfg }, clock);
  return { clock, l };
}

function pkts(n: number, size = 1500): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.alloc(size, i & 0xff));
}

/** Advances 1 ms at a time for `ms`, polling; returns delivered packets with their times (ms since start). */
function run(clock: SimClock, l: LinkDirection, ms: number, t0 = clock.nowUs()): { at: number; b: Buffer }[] {
  const got: { at: number; b: Buffer }[] = [];
  const out: Buffer[] = [];
  for (let k = 0; k < ms; k++) {
    clock.advance(MS);
    l.poll(out);
    for (const b of out) got.push({ at: (clock.nowUs() - t0) / MS, b });
    out.length = 0;
  }
  return got;
}

describe('trace consumption (mm-link semantics)', () => {
  test('one 1500-byte opportunity per ms carries one full-size packet per ms, in order', () => {
    const { clock, l } = link();
    const sent = pkts(100);
    for (const p of sent) l.enqueue(p);
    const got = run(clock, l, 50);
    assert.equal(got.length, 50);
    assert.deepEqual(got.map((g) => g.at), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.ok(got.every((g, i) => g.b === sent[i]), 'the same Buffers, in order');
    assert.equal(l.stats.deliveredBytes, 50 * 1500);
    assert.equal(l.stats.capacityBytes, 50 * 1500);
    assert.equal(l.stats.queuedPackets, 50);
  });

  test('small packets share an opportunity; a packet may span two opportunities', () => {
    const a = link();
    for (const p of pkts(30, 500)) a.l.enqueue(p);
    assert.equal(run(a.clock, a.l, 4).length, 12, '3 x 500 B per opportunity');
    const b = link();
    for (const p of pkts(30, 1000)) b.l.enqueue(p);
    // opportunity 1: p1 + half of p2; 2: rest of p2 + p3; 3: p4 + half of p5; 4: rest of p5 + p6
    assert.deepEqual(run(b.clock, b.l, 4).map((g) => g.at), [1, 2, 2, 3, 4, 4]);
  });

  test('an opportunity finding the queue empty is wasted but counted as capacity; the trace loops', () => {
    const { clock, l } = link({ trace: [0, 0, 5] }); // 3 opportunities every 5 ms
    run(clock, l, 20);
    assert.equal(l.stats.capacityBytes, 4 * 3 * 1500 + 2 * 1500, 'ms 0 (x2), 5, 5, 5, 10, 10, 10, ... 20');
    assert.equal(l.stats.deliveredPackets, 0);
    for (const p of pkts(5)) l.enqueue(p);
    const got = run(clock, l, 5);
    assert.deepEqual(got.map((g) => g.at), [5, 5, 5], 'next loop at +5 ms delivers three');
  });

  test('a constant-rate trace delivers its rate', () => {
    const { clock, l } = link({ trace: constantRateTrace(100) });
    let sent = 0;
    for (let k = 0; k < 2000; k++) {
      for (const p of pkts(10)) l.enqueue(p); // 120 Mbit/s offered
      sent += 10;
      clock.advance(MS);
      l.poll([]);
    }
    const mbps = (l.stats.deliveredBytes * 8) / 2 / 1e6;
    assert.ok(Math.abs(mbps - 100) < 0.5, `${mbps} Mbit/s`);
    assert.ok(sent > l.stats.deliveredPackets);
  });
});

describe('queue, delay, loss', () => {
  test('drop-tail in packets and in bytes', () => {
    const a = link({ queuePackets: 10 });
    for (const p of pkts(15)) a.l.enqueue(p);
    assert.equal(a.l.stats.droppedQueue, 5);
    assert.equal(a.l.stats.queuedPackets, 10);
    const b = link({ queueBytes: 4000 });
    for (const p of pkts(5)) b.l.enqueue(p);
    assert.equal(b.l.stats.queuedPackets, 2);
    b.l.enqueue(Buffer.alloc(900));
    assert.equal(b.l.stats.queuedBytes, 3900, 'a small packet still fits');
    assert.equal(b.l.stats.droppedQueue, 3);
  });

  test('the default queue is 200 ms at the mean rate, at least 64 packets', () => {
    const a = link({ trace: constantRateTrace(24) }); // 3 MB/s x 0.2 s = 600 kB = 400 packets
    for (const p of pkts(500)) a.l.enqueue(p);
    assert.equal(a.l.stats.queuedPackets, 400);
    const b = link({ trace: constantRateTrace(3) }); // 375 kB/s x 0.2 s = 50 packets < 64
    for (const p of pkts(100)) b.l.enqueue(p);
    assert.equal(b.l.stats.queuedPackets, 64);
  });

  test('one-way delay is added after the link', () => {
    const { clock, l } = link({ delayMs: 40 });
    l.enqueue(Buffer.alloc(100));
    const got = run(clock, l, 60);
    assert.deepEqual(got.map((g) => g.at), [41]);
  });

  test('random loss is seeded: 5% of 10k within 1%, same seed same drops', () => {
    const count = (seed: number): number => {
      const { l } = link({ lossPct: 5, seed, queuePackets: 1e6 });
      for (let k = 0; k < 10_000; k++) l.enqueue(Buffer.alloc(100));
      return l.stats.droppedLoss;
    };
    const a = count(7);
    assert.ok(a >= 400 && a <= 600, `${a} of 10000`);
    assert.equal(count(7), a);
    assert.notEqual(count(8), a);
  });
});

describe('outages and on/off', () => {
  test('an outage delivers nothing for its length; arrivals queue; capacity is not counted', () => {
    const { clock, l } = link({ outages: [{ atS: 0.1, forS: 0.2 }], queuePackets: 500 });
    const t0 = clock.nowUs();
    const got: number[] = [];
    const out: Buffer[] = [];
    for (let k = 0; k < 400; k++) {
      l.enqueue(Buffer.alloc(1500)); // one per ms: exactly the link rate
      clock.advance(MS);
      l.poll(out);
      for (let j = 0; j < out.length; j++) got.push((clock.nowUs() - t0) / MS);
      out.length = 0;
    }
    assert.equal(got.filter((t) => t >= 100 && t < 300).length, 0, 'nothing during [100, 300) ms');
    assert.ok(got.filter((t) => t < 100).length >= 98);
    assert.equal(l.stats.capacityBytes, 200 * 1500, '200 of the 400 opportunities fell in the outage');
    assert.equal(l.stats.droppedQueue + l.stats.droppedOutage, 0, 'the queue held the 200 packets');
    assert.ok(l.stats.queuedPackets >= 199);
  });

  test('queue drops during an outage are counted as droppedOutage', () => {
    const { clock, l } = link({ outages: [{ atS: 0, forS: 1 }], queuePackets: 10 });
    for (const p of pkts(15)) l.enqueue(p);
    clock.advance(500 * MS);
    l.poll([]);
    assert.equal(l.stats.droppedOutage, 5);
    assert.equal(l.stats.deliveredPackets, 0);
  });

  test('on/off: about the expected fraction of capacity, reproducible per seed', () => {
    const cap = (seed: number): number => {
      const { clock, l } = link({ onOff: { meanOnS: 0.5, meanOffS: 0.5 }, seed });
      for (let k = 0; k < 200; k++) {
        clock.advance(500 * MS);
        l.poll([]);
      }
      return l.stats.capacityBytes / (100_000 * 1500);
    };
    const f = cap(3);
    assert.ok(f > 0.35 && f < 0.65, `on fraction ${f}`);
    assert.equal(cap(3), f);
    assert.notEqual(cap(4), f);
  });
});

describe('traces, specs and models', () => {
  test('parseMahimahi: values, and errors naming the line', () => {
    assert.deepEqual(parseMahimahi('0\n0\n5\n\n7\n'), [0, 0, 5, 7]);
    assert.throws(() => parseMahimahi('1\n2\nx3\n', 'f.up'), /f\.up: line 3: expected a non-negative integer/);
    assert.throws(() => parseMahimahi('5\n4\n', 'f'), /line 2: time 4 ms goes backwards/);
    assert.throws(() => parseMahimahi('\n', 'f'), /empty trace/);
    assert.throws(() => parseMahimahi('0\n0\n', 'f'), /last time must be > 0/);
    assert.equal(traceMeanMbps([1]), 12);
    assert.ok(Math.abs(traceMeanMbps(constantRateTrace(7.3)) - 7.3) < 0.01);
  });

  test('validateCarrierEmulation names the field', () => {
    const ok = validateCarrierEmulation({ up: { rateMbps: 5 }, down: { trace: [1, 2], delayMs: 10 } }, 'c');
    assert.equal(ok.up.rateMbps, 5);
    assert.throws(() => validateCarrierEmulation({ up: { rateMbps: 5, lossPtc: 1 }, down: { rateMbps: 1 } }, 'carriers[0]'),
      /carriers\[0\]\.up\.lossPtc: unknown field/);
    assert.throws(() => validateCarrierEmulation({ up: { rateMbps: -1 }, down: { rateMbps: 1 } }, 'x'), /x\.up\.rateMbps: must be > 0/);
    assert.throws(() => validateCarrierEmulation({ up: { rateMbps: 1, lossPct: 101 }, down: { rateMbps: 1 } }, 'x'), /x\.up\.lossPct/);
    assert.throws(() => validateCarrierEmulation({ up: {}, down: { rateMbps: 1 } }, 'x'), /x\.up: needs exactly one of traceFile, trace, rateMbps/);
    assert.throws(() => validateCarrierEmulation({ up: { rateMbps: 1 }, down: { traceFile: '/nonexistent/t.down' } }, 'x'),
      /x\.down\.traceFile: no such file: \/nonexistent\/t\.down/);
    assert.throws(() => validateCarrierEmulation({ up: { rateMbps: 1, outages: [{ atS: 1, forS: 0 }] }, down: { rateMbps: 1 } }, 'x'),
      /x\.up\.outages\[0\]\.forS: must be > 0/);
    assert.throws(() => validateCarrierEmulation({ up: { rateMbps: 1 } }, 'x'), /x\.down/);
  });

  test('createTopology rejects a bad emulated carrier before building anything', async () => {
    const emulate = { up: { rateMbps: 5 }, down: { rateMbps: 5 } };
    await assert.rejects(createTopology({ carriers: [{ name: 'a', rateMbit: 5, emulate }] }), /carriers\[0\] \(a\): rateMbit and emulate are exclusive/);
    await assert.rejects(createTopology({ carriers: [{ name: 'a' }, { name: 'b', emulate: { up: { rateMbps: 5, delay: 3 }, down: { rateMbps: 5 } } as never }] }),
      /carriers\[1\]\.emulate\.up\.delay: unknown field/);
  });

  test('models: every name, seeded and reproducible, means as documented', () => {
    for (const name of MODEL_NAMES) {
      const a = modelCarrier(name, 1, 30);
      validateCarrierEmulation(a, name);
      assert.deepEqual(modelCarrier(name, 1, 30), a, `${name} reproducible`);
      assert.notDeepEqual(modelCarrier(name, 2, 30).down.trace, a.down.trace, `${name} seed matters`);
      assert.ok(traceMeanMbps(a.down.trace!) > traceMeanMbps(a.up.trace!), `${name}: down > up`);
    }
    assert.ok(Math.abs(traceMeanMbps(modelCarrier('lte-urban', 3, 60).down.trace!) - 20) < 0.5);
    assert.ok(Math.abs(traceMeanMbps(modelCarrier('5g-nr', 3, 60, { rateScale: 0.1 }).down.trace!) - 15) < 0.5);
    assert.throws(() => modelCarrier('lte-mars', 1), /unknown carrier model "lte-mars" \(known: lte-urban/);
  });

  test('hsr-350 has handover outages every 10-20 s', () => {
    const windows = modelOutages('hsr-350', 5, 120);
    assert.ok(windows.length >= 5 && windows.length <= 12, `${windows.length} handovers in 120 s`);
    for (const [a, b] of windows) assert.ok(b - a >= 50 && b - a <= 300, `outage of ${b - a} ms`);
    const c = modelCarrier('hsr-350', 5, 120);
    for (const t of [c.down.trace!, c.up.trace!]) {
      for (const [a, b] of windows) assert.ok(!t.some((ms) => ms > Math.ceil(a) + 10 && ms < Math.floor(b)), `no opportunity in [${a}, ${b})`);
    }
    const leo = modelOutages('satellite-leo', 1, 60);
    assert.equal(leo.length, 4, 'a reconfiguration every 15 s');
  });
});
