// Per-path estimators: the S3-2 delay with skewed clocks, delivery rate, bytes in flight.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PathState } from '../src/session/path-state.js';

test('S3-2: D = (TS4 - TS1) - (TS3 - TS2) with skewed clocks (1000, 900000, 900030, 1100 -> 70)', () => {
  const p = new PathState(0, 'a');
  p.nextSeq(1000, 900);
  p.onAck({ ackedPathSeq: 1, rcvPackets: 1, rcvBytes: 1000, watermark: 0, echoTs1: 1000, ts2: 900_000 }, 900_030, 1100);
  assert.equal(p.lastRttUs, 70);
  assert.equal(p.srttUs, 70);
  assert.equal(p.minRttUs, 70);
});

test('S3-2 holds across a 32-bit wrap of either clock', () => {
  const p = new PathState(0, 'a');
  p.nextSeq(1000, 0);
  // Sender clock wrapped between TS1 and TS4; peer clock wrapped between TS2 and TS3.
  const now = 2 ** 32 + 500; // wire time 500
  p.onAck({ ackedPathSeq: 1, rcvPackets: 1, rcvBytes: 1000, watermark: 0, echoTs1: 2 ** 32 - 40_000, ts2: 2 ** 32 - 10 }, 20, now);
  assert.equal(p.lastRttUs, 40_500 - 30);
});

test('bytes in flight follow the acknowledged path sequence; acks beyond what was sent are ignored', () => {
  const p = new PathState(0, 'a');
  for (let i = 0; i < 10; i++) p.nextSeq(1000, i);
  assert.equal(p.inflightBytes(), 10_000);
  p.onAck({ ackedPathSeq: 4, rcvPackets: 4, rcvBytes: 4000, watermark: 0, echoTs1: 0, ts2: 0 }, 0, 100);
  assert.equal(p.inflightBytes(), 6000);
  p.onAck({ ackedPathSeq: 99, rcvPackets: 99, rcvBytes: 99_000, watermark: 0, echoTs1: 0, ts2: 0 }, 0, 200);
  assert.equal(p.inflightBytes(), 6000, 'an ack for unsent sequences changes nothing');
});

test('delivery rate is measured from cumulative received bytes over at least 80 ms, as a windowed max', () => {
  const p = new PathState(0, 'a');
  // 10 Mbit/s = 1.25 bytes/us: 12_500 bytes every 10 ms, with a standing queue (busy).
  let t = 1_000_000;
  for (let i = 0; i < 200; i++) p.nextSeq(1250, t);
  for (let k = 1; k <= 30; k++) {
    t += 10_000;
    p.onAck({ ackedPathSeq: k, rcvPackets: k * 10, rcvBytes: k * 12_500, watermark: 0, echoTs1: 0, ts2: 0 }, 0, t);
  }
  assert.ok(Math.abs(p.rateMbps() - 10) < 0.5, `rate ${p.rateMbps()} Mbit/s`);
});

test('a path going out of service gives back its urgent packets (repairs a stream waits on) first, each group oldest first', () => {
  // A repair sent into a carrier that was dying came back last, after the carrier's other few
  // hundred kilobytes: the failover test's gap stretched to 230-300 ms waiting for it.
  const p = new PathState(0, 'a');
  for (let k = 1; k <= 6; k++) {
    const seq = p.nextSeq(1000, k);
    p.keepForRetransmit(seq, 100 + k, Buffer.from([k]), k, k === 3 || k === 6, k % 2 === 0);
  }
  p.onAck({ ackedPathSeq: 1, rcvPackets: 1, rcvBytes: 1000, watermark: 0, echoTs1: 0, ts2: 0 }, 0, 10);
  const back = p.unackedToResend(false);
  assert.deepEqual(back.map((u) => u.dataSeq), [103, 106, 102, 104, 105]);
  assert.deepEqual(back.map((u) => u.urgent), [true, true, false, false, false]);
  // With what Session.retransmitFrom needs: the copy's path sequence, and whether its sender repairs its own losses.
  assert.deepEqual(back.map((u) => u.pathSeq), [3, 6, 2, 4, 5]);
  assert.deepEqual(back.map((u) => u.keep), [false, true, true, true, false]);
  assert.equal(p.unackedToResend(false).length, 0, 'each packet is given back once');
});
