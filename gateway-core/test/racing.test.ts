// S0 transport racing, rule by rule, on a simulated clock. The endpoints are in-memory Paths the
// test drives: "the peer answers" is an authenticated datagram delivered on one of them.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SimClock } from '../src/clock.js';
import type { Path, TransportKind } from '../src/path/path.js';
import { TransportRacer, type RacerOptions } from '../src/racing/racer.js';
import { parseCloudConfig, parseEdgeConfig } from '../src/config/index.js';
import { DEFAULT_WEIGHTS, streamWeight, validateWeights, weightsProblem } from '../src/racing/weights.js';

const AUTH = Buffer.from('authentic answer');
const FORGED = Buffer.from('forged');
const MS = 1000;

class TestEndpoint implements Path {
  readonly description: string;
  sent: Buffer[] = [];
  closed = false;
  private dg: (d: Buffer) => void = () => {};
  private closeCb: (e: Error | undefined) => void = () => {};
  constructor(readonly kind: TransportKind, readonly openedAtUs: number) {
    this.description = `${kind} test`;
  }
  send(d: Buffer): boolean {
    if (this.closed) return false;
    this.sent.push(d);
    return true;
  }
  onDatagram(cb: (d: Buffer) => void): void { this.dg = cb; }
  onError(): void {}
  onClose(cb: (e: Error | undefined) => void): void { this.closeCb = cb; }
  close(): void { this.closed = true; }
  /** The peer's datagram arrives on this endpoint. */
  deliver(d: Buffer = AUTH): void { if (!this.closed) this.dg(d); }
  /** The connection dies under us (TCP reset, peer closed). */
  die(): void { this.closed = true; this.closeCb(new Error('peer closed')); }
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(over: Partial<RacerOptions> & { failOpen?: TransportKind[] } = {}) {
  const clock = new SimClock(5_000_000);
  const t0 = clock.nowUs();
  const opened: TestEndpoint[] = [];
  const received: Buffer[] = [];
  let probes = 0;
  const racer = new TransportRacer({
    name: 'lte-a',
    clock,
    cascade: ['udp', 'tcp', 'tls'],
    open: (kind) => {
      if (over.failOpen?.includes(kind)) return Promise.reject(new Error(`${kind} refused`));
      const e = new TestEndpoint(kind, clock.nowUs());
      opened.push(e);
      return Promise.resolve(e);
    },
    isAuthentic: (d) => d.equals(AUTH),
    requestProbe: () => { probes++; racer.send(Buffer.from('probe')); },
    switchThresholdMs: 10_000,
    // Long by default so rules other than S0-8 are seen without answers having to keep coming.
    anomalyThresholdMs: 600_000,
    weights: DEFAULT_WEIGHTS,
    keepSeveralStreams: false,
    ...over,
  });
  racer.onDatagram((d) => received.push(d));
  /** Advance simulated time and let endpoint opens (promises) settle. */
  const advance = async (ms: number): Promise<void> => {
    // In 1 ms steps around the interesting instants would be slow; timers fire in order anyway.
    clock.advance(ms * MS);
    await flush();
  };
  const ep = (kind: TransportKind, nth = 0): TestEndpoint | undefined => opened.filter((e) => e.kind === kind)[nth];
  const sinceT0 = (e: TestEndpoint | undefined): number => ((e?.openedAtUs ?? NaN) - t0) / MS;
  return { clock, racer, opened, received, ep, advance, sinceT0, probes: () => probes, t0 };
}

describe('S0-1 / S0-2: streams, endpoints, primary first', () => {
  test('three ordered streams; only stream 1 (UDP) connects at t0, the others hold placeholders', async () => {
    const r = setup();
    r.racer.start();
    await flush();
    const st = r.racer.status();
    assert.deepEqual(st.streams.map((s) => [s.stream, s.kind, s.state]), [[1, 'udp', 'open'], [2, 'tcp', 'placeholder'], [3, 'tls', 'placeholder']]);
    assert.equal(r.opened.length, 1);
    assert.equal(r.sinceT0(r.ep('udp')), 0);
    // The connect request went out on E1 at once.
    assert.equal(r.probes(), 1);
    assert.equal(r.ep('udp')?.sent.length, 1);
    assert.equal(st.active, null);
    assert.equal(st.phase, 'racing');
    r.racer.close();
  });

  test('a cascade of any length works (no fixed limit)', async () => {
    const r = setup({ cascade: ['udp', 'tcp', 'tls', 'tcp', 'tls'] });
    r.racer.start();
    await r.advance(45_000);
    assert.deepEqual(r.opened.map((e) => r.sinceT0(e)), [0, 10_000, 20_000, 30_000, 40_000]);
    r.racer.close();
  });
});

describe('S0-3: switch threshold T', () => {
  test('E2 (TCP) connects exactly T = 10 s after E1, and E1 keeps trying', async () => {
    const r = setup();
    r.racer.start();
    await r.advance(9_999);
    assert.equal(r.ep('tcp'), undefined, 'no TCP before T');
    await r.advance(1);
    assert.equal(r.sinceT0(r.ep('tcp')), 10_000);
    assert.equal(r.racer.status().streams[1]?.requestedAtMs, 10_000);
    assert.equal(r.ep('udp')?.closed, false, 'E1 keeps trying');
    // Connect requests and data go on both while neither has connected.
    const udpBefore = r.ep('udp')!.sent.length;
    assert.equal(r.racer.send(Buffer.from('data')), true);
    assert.equal(r.ep('udp')!.sent.length, udpBefore + 1);
    assert.ok(r.ep('tcp')!.sent.some((d) => d.toString() === 'data'));
    r.racer.close();
  });

  test('T is configurable down to tens of milliseconds', async () => {
    const r = setup({ switchThresholdMs: 30 });
    r.racer.start();
    await r.advance(29);
    assert.equal(r.opened.length, 1);
    await r.advance(1);
    assert.equal(r.sinceT0(r.ep('tcp')), 30);
    await r.advance(30);
    assert.equal(r.sinceT0(r.ep('tls')), 60);
    r.racer.close();
  });
});

describe('S0-5: cascade', () => {
  test('E4 (TLS, stream 3) connects at t0 + 2T when nothing connected', async () => {
    const r = setup();
    r.racer.start();
    await r.advance(19_999);
    assert.equal(r.ep('tls'), undefined);
    await r.advance(1);
    assert.equal(r.sinceT0(r.ep('tls')), 20_000);
    assert.deepEqual(r.racer.status().streams.map((s) => s.state), ['open', 'open', 'open']);
    r.racer.close();
  });

  test('E4 is closed when stream 1 or 2 connects, kept (and the others closed) when only it connects', async () => {
    const a = setup();
    a.racer.start();
    await a.advance(20_000);
    a.ep('tcp')!.deliver();
    assert.equal(a.ep('tls')!.closed, true, 'E4 closed: stream 2 connected');
    assert.equal(a.racer.status().active?.kind, 'tcp');
    a.racer.close();

    const b = setup();
    b.racer.start();
    await b.advance(20_000);
    b.ep('tls')!.deliver();
    assert.equal(b.ep('tls')!.closed, false);
    assert.equal(b.ep('udp')!.closed, true);
    assert.equal(b.ep('tcp')!.closed, true);
    assert.deepEqual(b.racer.status().active, { stream: 3, kind: 'tls', weight: DEFAULT_WEIGHTS.p3 });
    assert.equal(b.racer.kind, 'tls');
    b.racer.close();
  });

  test('a failed open is recorded and the cascade goes on', async () => {
    const r = setup({ failOpen: ['tcp'] });
    r.racer.start();
    await r.advance(10_000);
    assert.equal(r.racer.status().streams[1]?.state, 'failed');
    assert.match(r.racer.status().streams[1]?.note ?? '', /tcp refused/);
    await r.advance(10_000);
    assert.equal(r.sinceT0(r.ep('tls')), 20_000);
    r.racer.close();
  });
});

describe('S0-4: decision', () => {
  test('E1 connected before T: E2 is never started, E1 carries everything with weight P1', async () => {
    const r = setup();
    r.racer.start();
    await r.advance(50);
    r.ep('udp')!.deliver();
    await r.advance(30_000);
    assert.equal(r.opened.length, 1, 'no TCP/TLS endpoint was opened');
    const st = r.racer.status();
    assert.deepEqual(st.streams.map((s) => s.state), ['connected', 'placeholder', 'placeholder']);
    assert.deepEqual(st.active, { stream: 1, kind: 'udp', weight: DEFAULT_WEIGHTS.p1 });
    assert.equal(r.racer.description, 'udp test');
    r.racer.close();
  });

  test('E1 connected after E2 started: E2 is closed', async () => {
    const r = setup();
    r.racer.start();
    await r.advance(10_000);
    r.ep('udp')!.deliver();
    assert.equal(r.ep('tcp')!.closed, true);
    assert.equal(r.ep('udp')!.closed, false);
    assert.equal(r.racer.kind, 'udp');
    r.racer.close();
  });

  test('E1 not connected, E2 connected: E2 kept with weight P3, E1 closed', async () => {
    const r = setup();
    r.racer.start();
    await r.advance(10_000);
    r.ep('tcp')!.deliver();
    assert.equal(r.ep('udp')!.closed, true);
    assert.equal(r.ep('tcp')!.closed, false);
    assert.deepEqual(r.racer.status().active, { stream: 2, kind: 'tcp', weight: DEFAULT_WEIGHTS.p3 });
    // Nothing more is started at t0 + 2T: the decision is made.
    await r.advance(10_000);
    assert.equal(r.ep('tls'), undefined);
    assert.match(r.racer.status().streams[2]?.note ?? '', /not started/);
    // Packets now go on E2 only.
    r.racer.send(Buffer.from('x'));
    assert.equal(r.ep('tcp')!.sent.at(-1)?.toString(), 'x');
    r.racer.close();
  });

  test('keepSeveralStreams keeps every endpoint open and starts the whole cascade', async () => {
    const r = setup({ keepSeveralStreams: true });
    r.racer.start();
    await r.advance(100);
    r.ep('udp')!.deliver();
    await r.advance(20_000);
    assert.equal(r.opened.length, 3);
    r.ep('tcp')!.deliver();
    assert.ok(r.opened.every((e) => !e.closed));
    const st = r.racer.status();
    assert.deepEqual(st.streams.map((s) => s.weight), [DEFAULT_WEIGHTS.p1, DEFAULT_WEIGHTS.p2, 0]);
    r.racer.close();
  });

  test('forged (unauthenticated) answers do not connect an endpoint, but reach the owner to be counted', async () => {
    const r = setup();
    r.racer.start();
    await r.advance(10);
    r.ep('udp')!.deliver(FORGED);
    assert.equal(r.racer.status().streams[0]?.state, 'open');
    assert.equal(r.received.length, 1);
    await r.advance(10_000);
    assert.ok(r.ep('tcp'), 'the race went on');
    r.racer.close();
  });
});

describe('S0-6: weights', () => {
  test('P2 < P1 < P3 is validated', () => {
    assert.doesNotThrow(() => validateWeights({ p1: 2, p2: 1, p3: 3 }));
    assert.throws(() => validateWeights({ p1: 1, p2: 2, p3: 3 }), /p2 < p1 < p3/);
    assert.throws(() => validateWeights({ p1: 3, p2: 1, p3: 3 }), /p2 < p1 < p3/);
    assert.throws(() => validateWeights({ p1: 2, p2: 0, p3: 3 }), /positive/);
    assert.equal(weightsProblem({ p1: 10, p2: 5, p3: 20 }), undefined);
    assert.throws(() => setup({ weights: { p1: 5, p2: 6, p3: 7 } }), /p2 < p1 < p3/);
  });

  test('E1 connected: w(E1) = P1, w(E2) = P2; E1 failed, E2 connected: w(E2) = P3', () => {
    const w = { p1: 20, p2: 10, p3: 30 };
    assert.equal(streamWeight(0, [true, true], w), 20);
    assert.equal(streamWeight(1, [true, true], w), 10);
    assert.equal(streamWeight(1, [false, true], w), 30);
    assert.equal(streamWeight(2, [false, true, true], w), 10);
    assert.equal(streamWeight(2, [false, false, true], w), 30);
    assert.equal(streamWeight(0, [false, true], w), 0);
  });

  test('each packet goes on the stream of the highest weight; E1 connecting late demotes E2 to P2', async () => {
    const r = setup({ keepSeveralStreams: true, weights: { p1: 20, p2: 10, p3: 30 } });
    r.racer.start();
    await r.advance(10_000);
    r.ep('tcp')!.deliver();
    assert.deepEqual(r.racer.status().active, { stream: 2, kind: 'tcp', weight: 30 });
    r.racer.send(Buffer.from('one'));
    assert.equal(r.ep('tcp')!.sent.at(-1)?.toString(), 'one');
    r.ep('udp')!.deliver();
    assert.deepEqual(r.racer.status().streams.map((s) => s.weight), [20, 10, 0]);
    r.racer.send(Buffer.from('two'));
    assert.equal(r.ep('udp')!.sent.at(-1)?.toString(), 'two');
    assert.notEqual(r.ep('tcp')!.sent.at(-1)?.toString(), 'two');
    r.racer.close();
  });
});

describe('S0-7: per-type streams', () => {
  test('audio bound to stream 1, video to stream 2: each goes on its stream; unbound types on the best', async () => {
    const r = setup({ keepSeveralStreams: true });
    r.racer.start();
    await r.advance(10_000);
    r.ep('udp')!.deliver();
    r.ep('tcp')!.deliver();
    r.racer.bindType('audio', 1);
    r.racer.bindType('video', 2);
    r.racer.sendTyped('audio', Buffer.from('a'));
    r.racer.sendTyped('video', Buffer.from('v'));
    r.racer.sendTyped('bulk', Buffer.from('b'));
    assert.deepEqual(r.ep('udp')!.sent.slice(-2).map(String), ['a', 'b']);
    assert.equal(r.ep('tcp')!.sent.at(-1)?.toString(), 'v');
    assert.deepEqual(r.racer.status().bindings, { audio: 1, video: 2 });
    // A bound stream that is not connected falls back to the best one.
    r.racer.bindType('video', 3);
    r.racer.sendTyped('video', Buffer.from('v2'));
    assert.equal(r.ep('udp')!.sent.at(-1)?.toString(), 'v2');
    assert.throws(() => r.racer.bindType('x', 4), /streams are 1\.\.3/);
    r.racer.unbindType('video');
    r.racer.close();
  });
});

describe('S0-8: re-establishment after the anomaly threshold', () => {
  test('a connected stream silent for longer than the threshold reruns the whole procedure (UDP first again)', async () => {
    const r = setup({ anomalyThresholdMs: 3000 });
    r.racer.start();
    await r.advance(10_000);
    r.ep('tcp')!.deliver();
    // Answers keep coming for a while: no rerun.
    for (let i = 0; i < 10; i++) {
      await r.advance(500);
      r.ep('tcp')!.deliver();
    }
    assert.equal(r.racer.status().round, 1);
    const silentFrom = r.clock.nowUs();
    await r.advance(3_000);
    assert.equal(r.racer.status().round, 1, 'not yet: abnormal for exactly the threshold');
    await r.advance(300);
    const st = r.racer.status();
    assert.equal(st.round, 2);
    assert.equal(r.ep('tcp')!.closed, true);
    const udp2 = r.ep('udp', 1)!;
    assert.ok(udp2, 'a new E1 was opened');
    const restartMs = (udp2.openedAtUs - silentFrom) / MS;
    assert.ok(restartMs > 3000 && restartMs <= 3250, `rerun ${restartMs} ms after the last answer`);
    // And the new round has the same timings: TCP T after the new t0.
    await r.advance(10_000);
    assert.equal((r.ep('tcp', 1)!.openedAtUs - udp2.openedAtUs) / MS, 10_000);
    r.racer.close();
  });

  test('the winner closed by the peer: rerun after the threshold', async () => {
    const r = setup({ anomalyThresholdMs: 2000 });
    r.racer.start();
    await r.advance(10_000);
    r.ep('tcp')!.deliver();
    await r.advance(100);
    r.ep('tcp')!.die();
    assert.equal(r.racer.status().active, null);
    assert.equal(r.racer.send(Buffer.from('x')), false, 'nothing to send on');
    await r.advance(1_500);
    assert.equal(r.racer.status().round, 1);
    await r.advance(1_000);
    assert.equal(r.racer.status().round, 2);
    assert.equal(r.opened.filter((e) => e.kind === 'udp').length, 2);
    r.racer.close();
  });

  test('nothing connects at all: rerun the threshold after the last stage started', async () => {
    const r = setup({ anomalyThresholdMs: 5000 });
    r.racer.start();
    await r.advance(20_000 + 5_000);
    assert.equal(r.racer.status().round, 1);
    await r.advance(300);
    assert.equal(r.racer.status().round, 2);
    assert.ok(r.opened.slice(0, 3).every((e) => e.closed), 'round 1 endpoints closed');
    r.racer.close();
  });

  test('a rerun that finds UDP working again goes back to UDP', async () => {
    const r = setup({ anomalyThresholdMs: 1000 });
    r.racer.start();
    await r.advance(10_000);
    r.ep('tcp')!.deliver();
    await r.advance(1_500);
    assert.equal(r.racer.status().round, 2);
    r.ep('udp', 1)!.deliver();
    assert.equal(r.racer.kind, 'udp');
    r.racer.close();
  });
});

describe('racer as a Path', () => {
  test('close() closes every endpoint, stops the cascade and refuses sends', async () => {
    const r = setup();
    r.racer.start();
    await r.advance(10_000);
    r.racer.close();
    r.racer.close();
    assert.ok(r.opened.every((e) => e.closed));
    await r.advance(60_000);
    assert.equal(r.opened.length, 2);
    assert.equal(r.racer.send(Buffer.from('x')), false);
    assert.equal(r.racer.status().phase, 'closed');
    assert.equal(r.clock.pendingTimers(), 0);
  });

  test('an endpoint that opens after close() is closed at once', async () => {
    let resolve: ((p: Path) => void) | undefined;
    const clock = new SimClock();
    const racer = new TransportRacer({
      name: 'x', clock, cascade: ['udp'], open: () => new Promise<Path>((r) => { resolve = r; }), isAuthentic: () => true,
      switchThresholdMs: 100, anomalyThresholdMs: 1000, weights: DEFAULT_WEIGHTS, keepSeveralStreams: false,
    });
    racer.start();
    racer.close();
    const e = new TestEndpoint('udp', 0);
    resolve?.(e);
    await flush();
    assert.equal(e.closed, true);
  });

  test('decisions are logged as events with their times', async () => {
    const r = setup();
    r.racer.start();
    await r.advance(10_000);
    r.ep('tcp')!.deliver();
    const ev = r.racer.status().events.map((e) => `${e.atMs} ${e.event}`);
    assert.ok(ev.some((e) => /^10000 T passed: stream 2 swaps its placeholder for tcp/.test(e)), ev.join('\n'));
    assert.ok(ev.some((e) => /stream 2 \(tcp\) connected after 10000 ms/.test(e)), ev.join('\n'));
    assert.ok(ev.some((e) => /stream 1 \(udp\) closed: stream 2 connected/.test(e)), ev.join('\n'));
    assert.ok(ev.some((e) => /weights: stream 2 \(tcp\) = 3/.test(e)), ev.join('\n'));
    r.racer.close();
  });
});

describe('racing configuration', () => {
  const edge = (racing: unknown) => ({
    control: { cloud: 'c:1', tls: { ca: 'a', cert: 'b', key: 'c' } },
    carriers: [{ name: 'a', interface: 'w0' }],
    interception: { clientSubnets: ['10.0.0.0/8'] },
    dataPlane: { racing },
  });

  test('weights breaking P2 < P1 < P3 are refused with a worded error', () => {
    assert.throws(() => parseEdgeConfig(edge({ weights: { p1: 1, p2: 2, p3: 3 } }), 'edge.yaml'),
      /dataPlane\.racing\.weights: expected weights with p2 < p1 < p3, got p1=1 p2=2 p3=3/);
    const ok = parseEdgeConfig(edge({ weights: { p1: 20, p2: 10, p3: 30 }, switchThresholdMs: 30 }));
    assert.deepEqual(ok.dataPlane.racing.weights, { p1: 20, p2: 10, p3: 30 });
    assert.equal(ok.dataPlane.racing.switchThresholdMs, 30);
  });

  test('the switch threshold goes down to tens of milliseconds, not below 10', () => {
    assert.throws(() => parseEdgeConfig(edge({ switchThresholdMs: 5 }), 'edge.yaml'), /switchThresholdMs: expected a number between 10 and 600000/);
  });

  test('the anomaly threshold must exceed two keepalives (an idle carrier hears only keepalive answers)', () => {
    const cfg = { ...edge({ anomalyThresholdMs: 2000 }), dataPlane: { keepaliveMs: 1000, racing: { anomalyThresholdMs: 2000 } } };
    assert.throws(() => parseEdgeConfig(cfg, 'edge.yaml'), /dataPlane\.racing\.anomalyThresholdMs: expected more than twice keepaliveMs \(1000\)/);
    assert.equal(parseEdgeConfig({ ...cfg, dataPlane: { keepaliveMs: 200, racing: { anomalyThresholdMs: 1500 } } }).dataPlane.racing.anomalyThresholdMs, 1500);
  });

  test('cascade lists known transports only', () => {
    assert.throws(() => parseEdgeConfig(edge({ cascade: ['udp', 'quic'] }), 'edge.yaml'), /cascade\[1\]: expected one of udp\|tcp\|tls/);
    assert.deepEqual(parseEdgeConfig(edge({ cascade: ['udp'] })).dataPlane.racing.cascade, ['udp']);
  });

  test('cloud stream listeners accept host:port or "" (disabled)', () => {
    const cloud = (dp: unknown) => ({ control: { tls: { ca: 'a', cert: 'b', key: 'c' } }, dataPlane: dp });
    const c = parseCloudConfig(cloud({ tcpListen: '', tlsListen: '127.0.0.1:8443' }));
    assert.equal(c.dataPlane.tcpListen, '');
    assert.equal(c.dataPlane.tlsListen, '127.0.0.1:8443');
    assert.throws(() => parseCloudConfig(cloud({ tlsListen: '443' }), 'cloud.yaml'), /dataPlane\.tlsListen/);
  });
});
