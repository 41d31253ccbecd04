// S2 scheduling stages: classification (S2-4), stage 1 users and privileged users (S2-6),
// stage 2a first-bytes pinning (S2-7), stage 2b utility with F and beta (S2-8), stage 3
// queue-jumping (S2-9), per-class algorithms (S2-11).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CLASS_RULES, classify, packetMeta } from '../src/schedule/classify.js';
import { SendQueue, type QueuedPacket } from '../src/schedule/queue.js';
import { chooseSet } from '../src/schedule/utility.js';
import type { PathView } from '../src/schedule/scheduler.js';
import { FlowTable } from '../src/schedule/flows.js';

function ipv4(opts: { proto?: number; src?: string; dst?: string; sport?: number; dport?: number; dscp?: number; tcpFlags?: number; payload?: number }): Buffer {
  const proto = opts.proto ?? 6;
  const l4 = proto === 6 ? 20 : 8;
  const len = 20 + l4 + (opts.payload ?? 100);
  const b = Buffer.alloc(len);
  b[0] = 0x45;
  b[1] = (opts.dscp ?? 0) << 2;
  b.writeUInt16BE(len, 2);
  b[8] = 64;
  b[9] = proto;
  (opts.src ?? '10.0.0.1').split('.').forEach((o, i) => { b[12 + i] = Number(o); });
  (opts.dst ?? '10.0.0.2').split('.').forEach((o, i) => { b[16 + i] = Number(o); });
  b.writeUInt16BE(opts.sport ?? 40000, 20);
  b.writeUInt16BE(opts.dport ?? 80, 22);
  if (proto === 6) {
    b[32] = 5 << 4;
    b[33] = opts.tcpFlags ?? 0x18;
  }
  return b;
}

test('S2-4: flows are identified by their 5-tuple; TCP control packets are urgent', () => {
  const m = packetMeta(ipv4({ sport: 1234, dport: 443 }))!;
  assert.equal(m.proto, 6);
  assert.equal(m.sport, 1234);
  assert.equal(m.dport, 443);
  assert.equal(m.urgent, false);
  assert.notEqual(m.flow, packetMeta(ipv4({ sport: 1235, dport: 443 }))!.flow);
  assert.equal(packetMeta(ipv4({ tcpFlags: 0x02 }))!.urgent, true, 'SYN');
  assert.equal(packetMeta(ipv4({ tcpFlags: 0x10, payload: 0 }))!.urgent, true, 'pure ACK');
  assert.equal(packetMeta(Buffer.from([0x60, 0, 0, 0])), undefined, 'not IPv4');
  assert.equal(packetMeta(Buffer.alloc(10)), undefined, 'truncated');
});

test('classes: DSCP and ports by rule, then behaviour (first bytes interactive, later bulk, small UDP real-time)', () => {
  const pin = 330 * 1024;
  assert.equal(classify(packetMeta(ipv4({ dscp: 46 }))!, 0, DEFAULT_CLASS_RULES, pin), 'realtime');
  assert.equal(classify(packetMeta(ipv4({ dport: 22 }))!, 10 << 20, DEFAULT_CLASS_RULES, pin), 'interactive');
  assert.equal(classify(packetMeta(ipv4({ proto: 17, dport: 9999, payload: 160 }))!, 0, DEFAULT_CLASS_RULES, pin), 'realtime');
  assert.equal(classify(packetMeta(ipv4({ dport: 443 }))!, 1000, DEFAULT_CLASS_RULES, pin), 'interactive');
  assert.equal(classify(packetMeta(ipv4({ dport: 443 }))!, pin + 1, DEFAULT_CLASS_RULES, pin), 'bulk');
});

function view(id: number, rttMs: number, mbps: number, loss = 0, inflight = 0): PathView {
  return {
    id, name: `p${id}`, usable: () => true, deliveryRate: mbps / 8, srttUs: rttMs * 1000, minRttUs: rttMs * 1000,
    inflightBytes: () => inflight, lossRate: loss,
  };
}

test('S2-8: F = 0 selects exactly one interface, the best score', () => {
  const paths = [view(0, 80, 10), view(1, 20, 20), view(2, 40, 5)];
  for (const beta of [0, 0.1, 1]) {
    const s = chooseSet(paths, 1400, 0, { alpha: 0.02, beta });
    assert.equal(s.length, 1, `beta ${beta}`);
    assert.equal(s[0]!.view.id, 1);
  }
});

test('S2-8: a large F duplicates over several interfaces; the loss product decides how many', () => {
  const paths = [view(0, 30, 10, 0.05), view(1, 20, 20, 0.05), view(2, 40, 5, 0.05)];
  const two = chooseSet(paths, 1400, 50, { alpha: 0.02, beta: 0.1 });
  assert.ok(two.length >= 2, `F=50 chose ${two.length}`);
  const all = chooseSet(paths, 1400, 1e6, { alpha: 0.02, beta: 0.1 });
  assert.equal(all.length, 3);
  // Copies are ordered best first.
  assert.equal(all[0]!.view.id, 1);
  // Of the order of u: with F * L_S small against beta, no copy.
  assert.equal(chooseSet(paths, 1400, 0.5, { alpha: 0.02, beta: 0.1 }).length, 1);
});

test('S2-8 is buffer-aware: a queued path loses to an idle one', () => {
  const fast = view(0, 20, 20, 0, 400_000); // ~160 ms of queue at 20 Mbit/s
  const slow = view(1, 40, 10, 0, 0);
  assert.equal(chooseSet([fast, slow], 1400, 0)[0]!.view.id, 1);
});

function qp(id: number, flags = 0): QueuedPacket {
  const ip = Buffer.alloc(100);
  ip.writeUInt32BE(id, 20);
  return { ip, dataSeq: 0, flags, F: 0, flow: undefined, avoid: -1, enqueuedUs: 0 };
}
const idOf = (q: QueuedPacket | undefined): number => q!.ip.readUInt32BE(20);
const limits = { maxPackets: 100, maxBytes: 1 << 20, maxDelayUs: 1_000_000 };

test('stage 1: users take turns; stage 3: urgent packets and retransmissions jump the queue', () => {
  const q = new SendQueue(limits);
  q.push('a', qp(1), false);
  q.push('a', qp(2), false);
  q.push('a', qp(3), false);
  q.push('b', qp(11), false);
  q.push('b', qp(12), false);
  q.push('', qp(99), true);
  const order: number[] = [];
  for (;;) {
    const x = q.take(0, () => true, () => {});
    if (!x) break;
    order.push(idOf(x));
  }
  assert.deepEqual(order, [99, 1, 11, 2, 12, 3]);
});

test('S2-6: a privileged user goes first while it has data', () => {
  const q = new SendQueue(limits);
  q.setPrivileged(['vip']);
  q.push('a', qp(1), false);
  q.push('vip', qp(51), false);
  q.push('vip', qp(52), false);
  q.push('a', qp(2), false);
  const order: number[] = [];
  for (let x = q.take(0, () => true, () => {}); x; x = q.take(0, () => true, () => {})) order.push(idOf(x));
  assert.deepEqual(order, [51, 52, 1, 2]);
});

test('S2-4: a user of weight 3 sends three packets per turn, the others one; a user with nothing ready loses its turn', () => {
  const q = new SendQueue(limits);
  q.setWeights([['heavy', 3]]);
  for (let k = 1; k <= 6; k++) q.push('heavy', qp(k), false);
  for (let k = 11; k <= 13; k++) q.push('light', qp(k), false);
  const order: number[] = [];
  for (let x = q.take(0, () => true, () => {}); x; x = q.take(0, () => true, () => {})) order.push(idOf(x));
  assert.deepEqual(order, [1, 2, 3, 11, 4, 5, 6, 12, 13]);

  // Nothing of heavy's is ready: light goes, and heavy's turn starts over afterwards.
  const r = new SendQueue(limits);
  r.setWeights([['heavy', 2]]);
  r.push('heavy', qp(1), false);
  r.push('heavy', qp(2), false);
  r.push('light', qp(11), false);
  r.push('light', qp(12), false);
  assert.equal(idOf(r.take(0, (p) => idOf(p) > 10, () => {})!), 11);
  const rest: number[] = [];
  for (let x = r.take(0, () => true, () => {}); x; x = r.take(0, () => true, () => {})) rest.push(idOf(x));
  assert.deepEqual(rest, [1, 2, 12]);
});

test('the queue is bounded in packets and in waiting time, both counted by the caller', () => {
  const q = new SendQueue({ maxPackets: 2, maxBytes: 1 << 20, maxDelayUs: 50_000 });
  assert.ok(q.push('a', qp(1), false));
  assert.ok(q.push('a', qp(2), false));
  assert.equal(q.push('a', qp(3), false), false, 'full');
  let expired = 0;
  assert.equal(q.take(100_000, () => true, () => { expired++; }), undefined);
  assert.equal(expired, 2);
  assert.equal(q.length, 0);
});

test('a packet marked keep (the TCP relay\'s) never expires in the queue; the others still do', () => {
  const q = new SendQueue({ maxPackets: 10, maxBytes: 1 << 20, maxDelayUs: 50_000 });
  q.push('a', qp(1), false);
  q.push('a', { ...qp(2), keep: true }, false);
  q.push('a', qp(3), false);
  const expired: number[] = [];
  const x = q.take(100_000, () => true, (e) => expired.push(idOf(e)));
  assert.equal(idOf(x), 2, 'the kept packet is sent after waiting twice the limit');
  assert.deepEqual(expired, [1]);
  assert.equal(q.take(100_000, () => true, (e) => expired.push(idOf(e))), undefined);
  assert.deepEqual(expired, [1, 3]);
});

test('a user whose head packet is not ready (pinned path busy) does not block the others', () => {
  const q = new SendQueue(limits);
  q.push('a', qp(1), false);
  q.push('b', qp(11), false);
  const x = q.take(0, (c) => idOf(c) !== 1, () => {});
  assert.equal(idOf(x), 11);
  assert.equal(q.length, 1);
});

test('S2-7: within one user, a flow whose pinned path is busy does not hold up the user\'s other flows; a flow keeps its own order', () => {
  const t = new FlowTable();
  const fa = t.touch('A', 'u', 0);
  const fb = t.touch('B', 'u', 0);
  const q = new SendQueue(limits);
  const pk = (id: number, flow: typeof fa): QueuedPacket => ({ ...qp(id), flow });
  q.push('u', pk(1, fa), false); // A's path is full
  q.push('u', pk(2, fa), false);
  q.push('u', pk(3, fb), false); // B's path has room
  q.push('u', pk(4, fa), false);
  q.push('u', pk(5, fb), false);
  let aReady = false;
  const ready = (c: QueuedPacket) => c.flow === fb || aReady;
  assert.equal(idOf(q.take(0, ready, () => {})), 3, 'B goes past A\'s blocked head');
  assert.equal(idOf(q.take(0, ready, () => {})), 5);
  assert.equal(q.take(0, ready, () => {}), undefined, 'A never overtakes itself: 2 and 4 stay behind 1');
  aReady = true;
  assert.deepEqual([1, 2, 4].map(() => idOf(q.take(0, ready, () => {}))), [1, 2, 4]);
  assert.equal(q.length, 0);
});

test('S2-7: the flow table keeps bytes per flow, bounded, with idle expiry', () => {
  const t = new FlowTable(3, 1_000_000);
  const f = t.touch('x', 'u', 0);
  f.bytes += 5;
  assert.equal(t.touch('x', 'u', 10).bytes, 5);
  t.touch('y', 'u', 20);
  t.touch('z', 'u', 30);
  t.touch('w', 'u', 40);
  assert.equal(t.size, 3, 'least recently seen forgotten');
  t.expire(2_000_000);
  assert.equal(t.size, 0);
});
