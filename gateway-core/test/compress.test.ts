// TCP/IPv4 header compression (wire/compress): every packet comes back byte for byte, 21 bytes
// are saved per compressed packet, what cannot be compressed goes as is, hostile bodies are
// refused with a reason, contexts are bounded and reused only when safe; and through two
// simulated sessions over lossy, reordering links, a TCP stream arrives intact and smaller.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { COMPRESSION_SAVES, HeaderCompressor, HeaderDecompressor, MAX_CONTEXTS, contextOf, type FlowCompression } from '../src/wire/compress.js';
import { SimClock } from '../src/clock.js';
import { SimLink } from '../src/sim/link.js';
import { Flags } from '../src/wire/header.js';
import { DropCounters } from '../src/wire/drops.js';
import { simSessionPair } from './sim-session-pair.js';
import { tcpPacket, udpPacket } from './ip-packets.js';

type Flow = { hc?: FlowCompression | undefined };
const SETTLE = 100_000;

/** Encode `ip` for `flow` at `now`; the body the receiver gets (the packet itself when sent as is). */
function send(c: HeaderCompressor, flow: Flow, ip: Buffer, now: number): { body: Buffer; compressed: boolean } {
  const b = c.encode(flow, ip, now, SETTLE);
  return b ? { body: Buffer.from(b), compressed: true } : { body: ip, compressed: false };
}

test('a flow announces its context, then is compressed: every packet is rebuilt byte for byte, 21 bytes smaller', () => {
  const c = new HeaderCompressor();
  const d = new HeaderDecompressor();
  const flow: Flow = {};
  let kinds = '';
  for (let i = 0; i < 600; i++) {
    const ip = tcpPacket(1000 + i * 1348, { payload: i % 7 === 0 ? 0 : 1348 }); // pure ACKs among the data
    const now = i * 1000;
    const { body, compressed } = send(c, flow, ip, now);
    assert.ok(compressed, `packet ${i} goes through the compressor`);
    if (body[0] === 1) assert.equal(body.length, ip.length - COMPRESSION_SAVES, 'a compressed packet is 21 bytes smaller');
    kinds += body[0] === 0 ? 'A' : 'c';
    const back = d.decode(body);
    assert.ok(Buffer.isBuffer(back), `packet ${i}: ${String(back)}`);
    assert.deepEqual(back, ip, `packet ${i} rebuilt exactly`);
  }
  assert.equal(COMPRESSION_SAVES, 21);
  // Announced until the settle time (100 ms at 1 packet/ms) had passed, then every 256 packets.
  assert.equal(kinds.slice(0, 100), 'A'.repeat(100));
  assert.equal(kinds[100], 'c');
  assert.equal(kinds.slice(100).split('').filter((k) => k === 'A').length, 1, 're-announced once in the next 500');
  assert.equal(kinds[100 + 256], 'A');
});

test('what cannot be compressed goes as is: not TCP, IP options, fragments, URG, a length that does not match, a changed TTL', () => {
  const c = new HeaderCompressor();
  const flow: Flow = {};
  assert.equal(c.encode(flow, udpPacket(1), 0, SETTLE), undefined, 'UDP');
  const opts = tcpPacket(1);
  opts[0] = 0x46;
  assert.equal(contextOf(opts), undefined, 'IP options');
  const frag = tcpPacket(1);
  frag.writeUInt16BE(0x2000, 6);
  assert.equal(contextOf(frag), undefined, 'more fragments');
  assert.equal(contextOf(tcpPacket(1, { flags: 0x30 })), undefined, 'URG');
  const short = tcpPacket(1).subarray(0, 100);
  assert.equal(contextOf(short), undefined, 'total length is not the packet length');
  assert.ok(c.encode(flow, tcpPacket(1), 0, SETTLE), 'the flow gets a context');
  assert.equal(c.encode(flow, tcpPacket(2, { ttl: 63 }), 1, SETTLE), undefined, 'a packet whose TTL changed is sent as is');
  assert.equal(c.encode(undefined, tcpPacket(3), 2, SETTLE), undefined, 'a packet of no known flow (a re-send) is sent as is');
});

test('hostile or broken bodies are refused with a reason, never a crash or a wrong packet', () => {
  const d = new HeaderDecompressor();
  assert.equal(d.decode(Buffer.alloc(2)), 'malformed-body', 'shorter than kind and context');
  assert.equal(d.decode(Buffer.from([7, 0, 1, ...Buffer.alloc(40)])), 'malformed-body', 'unknown kind');
  assert.equal(d.decode(Buffer.from([1, 0, 5, ...Buffer.alloc(20)])), 'unknown-context', 'a context never announced');
  const ctxTooBig = Buffer.concat([Buffer.from([0, MAX_CONTEXTS >> 8, MAX_CONTEXTS & 0xff]), tcpPacket(1)]);
  assert.equal(d.decode(ctxTooBig), 'malformed-body', 'a context number over the bound');
  assert.equal(d.decode(Buffer.concat([Buffer.from([0, 0, 1]), udpPacket(1)])), 'malformed-body', 'an announcement of a packet that is no compressible TCP');
  assert.ok(Buffer.isBuffer(d.decode(Buffer.concat([Buffer.from([0, 0, 1]), tcpPacket(1)]))), 'context 1 announced');
  const badOffset = Buffer.from([1, 0, 1, ...Buffer.alloc(16)]);
  badOffset[3 + 10] = 4 << 4; // a 16-byte TCP header
  assert.equal(d.decode(badOffset), 'malformed-body', 'TCP header shorter than 20 bytes');
  const longOptions = Buffer.from([1, 0, 1, ...Buffer.alloc(16)]);
  longOptions[3 + 10] = 15 << 4; // 60-byte TCP header, but no options follow
  assert.equal(d.decode(longOptions), 'malformed-body', 'options longer than the body');
  for (let i = 0; i < 20_000; i++) {
    const body = randomBytes(1 + (i % 80));
    const r = d.decode(body);
    assert.ok(Buffer.isBuffer(r) || r === 'malformed-body' || r === 'unknown-context');
    if (Buffer.isBuffer(r) && body[0] === 1) assert.equal(r.length, body.length + COMPRESSION_SAVES);
  }
});

test('contexts are bounded: after 4096 flows new ones go uncompressed, and a released context is reused only 30 s later', () => {
  const c = new HeaderCompressor();
  const flows: Flow[] = [];
  for (let i = 0; i < MAX_CONTEXTS; i++) {
    const f: Flow = {};
    assert.ok(c.encode(f, tcpPacket(1, { sport: 1024 + i }), 0, SETTLE));
    flows.push(f);
  }
  assert.equal(new Set(flows.map((f) => f.hc?.ctx)).size, MAX_CONTEXTS, 'each flow its own context');
  const late: Flow = {};
  assert.equal(c.encode(late, tcpPacket(1, { sport: 9 }), 0, SETTLE), undefined, 'no context left');
  c.release(flows[7]!.hc!, 1_000_000);
  assert.equal(c.encode(late, tcpPacket(1, { sport: 9 }), 20_000_000, SETTLE), undefined, 'released 19 s ago: not yet');
  assert.ok(c.encode(late, tcpPacket(1, { sport: 9 }), 31_000_001, SETTLE), 'released 30 s ago: reused');
  assert.equal(late.hc?.ctx, flows[7]!.hc!.ctx);
});

test('through two sessions over lossy, reordering links, TCP segments arrive intact and take fewer carrier bytes', () => {
  const run = (compressHeaders: boolean) => {
    const clock = new SimClock();
    const links = [
      new SimLink(clock, 'a', { rateMbps: 20, delayMs: 20, queueBytes: 200_000, lossPct: 1 }),
      new SimLink(clock, 'b', { rateMbps: 10, delayMs: 45, queueBytes: 100_000, lossPct: 1 }),
    ];
    const got: Buffer[] = [];
    const drops = new DropCounters();
    const { a, b } = simSessionPair(clock, links, { options: { compressHeaders }, b: { drops }, deliverB: (ip) => got.push(Buffer.from(ip)) });
    clock.advance(200_000);
    const sent = new Map<number, Buffer>();
    for (let ms = 0; ms < 3000; ms++) {
      for (let k = 0; k < 2; k++) { // 21.6 Mbit/s of 1400-byte segments over 4 flows
        const i = sent.size;
        const ip = tcpPacket(i, { sport: 40000 + (i % 4) });
        sent.set(i, ip);
        a.send(ip);
      }
      clock.advance(1000);
    }
    clock.advance(2_000_000);
    for (const ip of got) {
      const orig = sent.get(ip.readUInt32BE(52));
      assert.ok(orig, 'a packet that was sent');
      assert.deepEqual(ip, orig, 'delivered byte for byte');
    }
    const wire = a.status().reduce((s, p) => s + p.txBytes, 0);
    a.close();
    b.close();
    return { got: got.length, sent: sent.size, wire, drops, unsent: a.engineStats().droppedUnsent };
  };
  const on = run(true);
  const off = run(false);
  // What did not arrive was lost on a link (1 % each, not re-sent here) or dropped, and counted,
  // by the sender's queue (the loss shrinks the carriers' caps): none went missing in between.
  assert.ok(on.got + on.unsent >= on.sent * 0.97, `delivered ${on.got} of ${on.sent}, ${on.unsent} counted unsent`);
  assert.ok(on.got >= on.sent * 0.95, `delivered ${on.got} of ${on.sent}`);
  assert.equal(on.drops.get('unknown-context'), 0, 'no packet arrived before its context');
  assert.equal(on.drops.get('malformed-body'), 0);
  // Per packet 1472 carrier bytes become 1451 once flows are compressed.
  const perPacketOn = on.wire / on.sent;
  const perPacketOff = off.wire / off.sent;
  assert.ok(perPacketOff - perPacketOn > 15, `carrier bytes per packet: ${perPacketOn.toFixed(1)} compressed, ${perPacketOff.toFixed(1)} not`);
  assert.equal(Flags.Compressed, 0x80);
});

test('TCP relay frames (protocol 253) are compressed too: rebuilt byte for byte, 21 bytes smaller; a body of the wrong kind for its context is refused', async () => {
  const { encodeData, encodeAck } = await import('../src/relay/frame.js');
  const c = new HeaderCompressor();
  const d = new HeaderDecompressor();
  const flow: Flow = {};
  const addr = { src: 0x0a280002, dst: 0x0a0a0002, sport: 80, dport: 40000 };
  let compressedSeen = 0;
  for (let i = 0; i < 300; i++) {
    const ip = i % 5 === 0 ? encodeAck(addr, 7, 0, i * 1364, 1 << 22, [[i * 1364 + 2728, i * 1364 + 4092]]) : encodeData(addr, 7, 0, i * 1364, randomBytes(1364));
    const { body, compressed } = send(c, flow, ip, i * 1000);
    assert.ok(compressed, `frame ${i} goes through the compressor`);
    if (body[0] === 2) {
      compressedSeen++;
      assert.equal(body.length, ip.length - 21, 'a compressed relay frame is 21 bytes smaller');
    }
    const back = d.decode(body);
    assert.ok(Buffer.isBuffer(back), `frame ${i}: ${String(back)}`);
    assert.deepEqual(back, ip, `frame ${i} rebuilt exactly`);
  }
  // The first SETTLE (100 frames at 1 ms) announce the context.
  assert.ok(compressedSeen >= 195, `${compressedSeen} of 300 compressed`);
  // A TCP-compressed body naming the relay context, and a relay body naming a TCP context: malformed.
  const tcpBody = Buffer.concat([Buffer.from([1, 0, flow.hc?.ctx ?? 0]), Buffer.alloc(40)]);
  assert.equal(d.decode(tcpBody), 'malformed-body');
  const tflow: Flow = {};
  for (let i = 0; i < 4; i++) d.decode(Buffer.from(c.encode(tflow, tcpPacket(1000 + i), 0, SETTLE) as Buffer));
  assert.equal(d.decode(Buffer.concat([Buffer.from([2, 0, tflow.hc?.ctx ?? 0]), Buffer.alloc(20)])), 'malformed-body');
  // A frame that would compress below the codec's smallest data body (20 bytes) goes as it is.
  for (const n of [0, 1, 4]) assert.equal(c.encode(flow, encodeData(addr, 7, 0, 1, Buffer.alloc(n)), 1_000_000, SETTLE), undefined, `a ${n}-byte DATA frame`);
});
