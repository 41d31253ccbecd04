// The wire format and its decoder: round trips, and every kind of bad input refused with a
// counted reason (never a throw), including a few hundred thousand random datagrams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SessionCodec, peekSessionId } from '../src/wire/codec.js';
import { ReplayWindow } from '../src/wire/replay.js';
import {
  ACK_BODY_LEN, DATA_OVERHEAD, Flags, MAX_DATAGRAM, MAX_NACK_RANGES, NACK_FIXED_LEN, NACK_RANGE_LEN, OUTER_LEN, PacketType, TAG_LEN, TS_LEN,
  writeAckBody, writeOuter, writeU48,
} from '../src/wire/header.js';
import { Sealer } from '../src/wire/aead.js';
import { DropCounters } from '../src/wire/drops.js';
import { SimClock } from '../src/clock.js';
import { Session } from '../src/session/session.js';
import { RateWeightedScheduler } from '../src/schedule/rate-weighted.js';
import { prng } from '../src/sim/link.js';

const k1 = randomBytes(32);
const k2 = randomBytes(32);
const ip = Buffer.concat([Buffer.from([0x45, 0, 0, 60]), randomBytes(56)]);

test('data, ack and probe round-trip through seal and open', () => {
  const tx = new SessionCodec(0xdeadbeef, k1, k2);
  const rx = new SessionCodec(0xdeadbeef, k2, k1);
  const d = tx.encodeData(3, 2 ** 40 + 5, 0x04, 123456, 2 ** 47, ip, 65535);
  assert.equal(d.length, ip.length + DATA_OVERHEAD);
  const r = rx.decode(d);
  assert.ok(r.ok && r.packet.type === PacketType.Data);
  assert.equal(r.packet.header.pathId, 3);
  assert.equal(r.packet.header.pathSeq, 2 ** 40 + 5);
  assert.equal(r.packet.header.flags, 0x04);
  assert.equal(r.packet.header.sessionId, 0xdeadbeef);
  assert.equal(r.packet.ts1, 123456);
  assert.equal(r.packet.dataSeq, 2 ** 47);
  assert.equal(r.packet.flowGap, 65535);
  assert.deepEqual(r.packet.payload, ip);

  const ack = { ackedPathSeq: 99, rcvPackets: 1000, rcvBytes: 2 ** 33, watermark: 77, echoTs1: 0xfffffff0, ts2: 5 };
  const a = rx.decode(tx.encodeAck(1, 7, 42, ack));
  assert.ok(a.ok && a.packet.type === PacketType.Ack);
  assert.deepEqual(a.packet.ack, ack);
  assert.equal(a.packet.ts1, 42);

  // An ack for another path's data (Flags.AckFor): the acked path's id travels after the body.
  const other = rx.decode(tx.encodeAck(1, 8, 44, { ...ack, forPath: 2 }, 0x10));
  assert.ok(other.ok && other.packet.type === PacketType.Ack);
  assert.deepEqual(other.packet.ack, { ...ack, forPath: 2 });
  assert.equal(other.packet.header.flags, 0x10 | Flags.AckFor, 'tier bits kept, AckFor set');
  // The flag without the extra byte (or an ordinary ack claiming it) is a malformed body.
  const sealer = new Sealer(k1);
  const forged = Buffer.alloc(OUTER_LEN + TS_LEN + ACK_BODY_LEN + TAG_LEN);
  writeOuter(forged, { type: PacketType.Ack, flags: Flags.AckFor, pathId: 1, sessionId: 0xdeadbeef, keyId: 0, pathSeq: 9 });
  const body = Buffer.alloc(TS_LEN + ACK_BODY_LEN);
  writeAckBody(body, TS_LEN, ack);
  const bad = rx.decode(sealer.sealInto(forged, [body]));
  assert.deepEqual(bad, { ok: false, reason: 'malformed-body' });

  const p = rx.decode(tx.encodeProbe(2, 8, 43, 1234, 100));
  assert.ok(p.ok && p.packet.type === PacketType.Probe);
  assert.equal(p.packet.watermark, 1234);
  assert.equal(p.packet.padding, 100);
});

test('a tampered byte anywhere, or a wrong key, fails authentication', () => {
  const tx = new SessionCodec(1, k1, k2);
  const rx = new SessionCodec(1, k2, k1);
  const d = tx.encodeData(0, 1, 0, 1, 1, ip);
  // Skip byte 0 (version/type: refused earlier as bad-version/bad-type) and the session id
  // bytes 4..7 (refused as unknown-session); every other byte is covered by the tag.
  for (let i = 1; i < d.length; i++) {
    if (i >= 4 && i < 8) continue;
    const t = Buffer.from(d);
    t[i] = (t[i] as number) ^ 0x01;
    const r = rx.decode(t);
    assert.ok(!r.ok, `byte ${i} flipped was accepted`);
    assert.equal(r.reason, 'auth-failed', `byte ${i}`);
  }
  const wrong = new SessionCodec(1, k2, randomBytes(32));
  const r = wrong.decode(d);
  assert.ok(!r.ok && r.reason === 'auth-failed');
});

test('truncated, oversized and malformed datagrams are refused by reason', () => {
  const tx = new SessionCodec(1, k1, k2);
  const rx = new SessionCodec(1, k2, k1);
  const d = tx.encodeData(0, 1, 0, 1, 1, ip);
  const expect = (buf: Buffer, reason: string): void => {
    const r = rx.decode(buf);
    assert.ok(!r.ok, `accepted ${buf.length} bytes`);
    assert.equal(r.reason, reason);
  };
  expect(Buffer.alloc(0), 'truncated');
  expect(d.subarray(0, OUTER_LEN + 3), 'truncated');
  expect(d.subarray(0, d.length - 1), 'auth-failed');
  expect(Buffer.alloc(MAX_DATAGRAM + 1, 0x11), 'oversized');
  const badVersion = Buffer.from(d);
  badVersion[0] = 0x21;
  expect(badVersion, 'bad-version');
  const badType = Buffer.from(d);
  badType[0] = 0x1f;
  expect(badType, 'bad-type');
  // Authenticated but too short to hold an IP packet.
  expect(tx.encodeData(0, 2, 0, 1, 1, Buffer.alloc(4)), 'malformed-body');
  assert.equal(Buffer.from(d).subarray(-TAG_LEN).length, TAG_LEN);
});

test('replay window: accepts each sequence once, in any order inside the window', () => {
  const w = new ReplayWindow(128);
  assert.ok(w.accept(10));
  assert.ok(!w.accept(10));
  assert.ok(w.accept(5));
  assert.ok(!w.accept(5));
  assert.ok(w.accept(200));
  assert.ok(!w.accept(10), 'too old for the window');
  assert.ok(w.accept(150));
  assert.ok(!w.accept(150));
  assert.ok(w.accept(10_000));
  assert.ok(w.accept(9_999));
  assert.ok(!w.accept(9_999));
});

function session(drops: DropCounters): Session {
  return new Session({
    sessionId: 42, sendKey: k2, recvKey: k1, pathNames: ['a', 'b'], clock: new SimClock(), scheduler: new RateWeightedScheduler(),
    keepaliveMs: 1000, ackIntervalMs: 10, ackEveryPackets: 8, pathDeadMs: 3000,
    reorder: { holdMs: 100, maxPackets: 1024, maxBytes: 1 << 20 }, replayWindow: 1024, deliver: () => {}, drops,
  });
}

test('a replayed datagram is dropped and counted; an unknown path id too', () => {
  const drops = new DropCounters();
  const s = session(drops);
  const tx = new SessionCodec(42, k1, k2);
  const d = tx.encodeData(0, 1, 0, 1, 1, ip);
  s.receive(d);
  s.receive(d);
  assert.equal(drops.get('replayed'), 1);
  s.receive(tx.encodeData(9, 1, 0, 1, 2, ip));
  assert.equal(drops.get('unknown-path'), 1);
  s.close();
});

test('300k random datagrams never throw and every one is counted as a drop', () => {
  const drops = new DropCounters();
  const s = session(drops);
  const rand = prng(7);
  const N = 300_000;
  for (let i = 0; i < N; i++) {
    const len = Math.floor(rand() * 1600);
    const d = Buffer.allocUnsafe(len);
    for (let j = 0; j < len; j++) d[j] = Math.floor(rand() * 256);
    // A third look like ours (version 1, a known type, this session) to reach the AEAD.
    if (i % 3 === 0 && len >= 8) {
      d[0] = 0x10 | (1 + (i % 3));
      d.writeUInt32BE(42, 4);
    }
    const peek = peekSessionId(d);
    if (!peek.ok) drops.add(peek.reason);
    else if (peek.sessionId !== 42) drops.add('unknown-session');
    else s.receive(d);
  }
  assert.equal(drops.total(), N);
  assert.ok(drops.get('auth-failed') > 50_000, JSON.stringify(drops.toJSON()));
  s.close();
});

test('nack (S4-6 feedback) round-trips; every malformed body is refused as malformed-body', () => {
  const tx = new SessionCodec(5, k1, k2);
  const rx = new SessionCodec(5, k2, k1);
  const body = { echoSeq: 2 ** 40, highest: 2 ** 40 + 10, turnaroundUs: 1234, ranges: [{ first: 2, count: 1 }, { first: 5, count: 3 }, { first: 2 ** 40 + 1, count: 9 }] };
  const r = rx.decode(tx.encodeNack(1, 9, 77, body));
  assert.ok(r.ok && r.packet.type === PacketType.Nack);
  assert.deepEqual(r.packet.nack, body);
  assert.equal(r.packet.ts1, 77);
  const empty = rx.decode(tx.encodeNack(0, 10, 1, { echoSeq: 0, highest: 0, turnaroundUs: 0, ranges: [] }));
  assert.ok(empty.ok && empty.packet.type === PacketType.Nack && empty.packet.nack.ranges.length === 0);
  const full = { echoSeq: 1, highest: 10_000, turnaroundUs: 0, ranges: Array.from({ length: MAX_NACK_RANGES }, (_, i) => ({ first: 1 + i * 3, count: 2 })) };
  const f = rx.decode(tx.encodeNack(0, 11, 1, full));
  assert.ok(f.ok && f.packet.type === PacketType.Nack && f.packet.nack.ranges.length === MAX_NACK_RANGES);
  assert.throws(() => tx.encodeNack(0, 12, 1, { ...full, ranges: [...full.ranges, { first: 20_000, count: 1 }] }), RangeError);

  // Authentic packets whose body is wrong: built with a valid seal around hand-made plaintext.
  const sealed = (plain: Buffer): Buffer => {
    const out = Buffer.allocUnsafe(OUTER_LEN + plain.length + TAG_LEN);
    writeOuter(out, { type: PacketType.Nack, flags: 0, pathId: 0, sessionId: 5, keyId: 0, pathSeq: 100 });
    return new Sealer(k1).sealInto(out, [plain]);
  };
  const plain = (n: number, ranges: [number, number][], extra = 0, highest = 1000, reserved = 0): Buffer => {
    const b = Buffer.alloc(TS_LEN + NACK_FIXED_LEN + ranges.length * NACK_RANGE_LEN + extra);
    writeU48(b, 1, TS_LEN);
    writeU48(b, highest, TS_LEN + 8);
    b.writeUInt16BE(n, TS_LEN + 20);
    b.writeUInt16BE(reserved, TS_LEN + 22);
    ranges.forEach(([first, count], i) => {
      b.writeUIntBE(first, TS_LEN + NACK_FIXED_LEN + i * NACK_RANGE_LEN, 6);
      b.writeUInt16BE(count, TS_LEN + NACK_FIXED_LEN + i * NACK_RANGE_LEN + 6);
    });
    return b;
  };
  assert.ok(rx.decode(sealed(plain(2, [[3, 1], [7, 2]]))).ok, 'the hand-made encoding itself is valid');
  const bad: [string, Buffer][] = [
    ['short fixed part', Buffer.alloc(TS_LEN + NACK_FIXED_LEN - 1)],
    ['count says 3, body has 2', plain(3, [[3, 1], [7, 2]])],
    ['trailing bytes', plain(2, [[3, 1], [7, 2]], 1)],
    ['too many ranges', plain(MAX_NACK_RANGES + 1, Array.from({ length: MAX_NACK_RANGES + 1 }, (_, i): [number, number] => [1 + 2 * i, 1]))],
    ['empty range', plain(1, [[3, 0]])],
    ['sequence 0', plain(1, [[0, 1]])],
    ['not ascending', plain(2, [[7, 1], [3, 1]])],
    ['overlapping', plain(2, [[3, 5], [7, 1]])],
    ['beyond highest', plain(1, [[999, 5]])],
    ['reserved bits', plain(0, [], 0, 1000, 1)],
  ];
  const drops = new DropCounters();
  for (const [what, pt] of bad) {
    const d = rx.decode(sealed(pt));
    assert.ok(!d.ok, `${what} was accepted`);
    assert.equal(d.reason, 'malformed-body', what);
    drops.add(d.reason);
  }
  assert.equal(drops.get('malformed-body'), bad.length);
});

test('a data packet with sequence 0, or a flow gap reaching back past sequence 1, is malformed', () => {
  const tx = new SessionCodec(1, k1, k2);
  const rx = new SessionCodec(1, k2, k1);
  const ok = rx.decode(tx.encodeData(0, 1, 0, 1, 10, ip, 9));
  assert.ok(ok.ok && ok.packet.type === PacketType.Data && ok.packet.flowGap === 9);
  for (const [seq, gap] of [[0, 0], [10, 10], [3, 500]] as const) {
    const r = rx.decode(tx.encodeData(0, 1, 0, 1, seq, ip, gap));
    assert.deepEqual(r, { ok: false, reason: 'malformed-body' }, `seq ${seq} gap ${gap}`);
  }
});
