// S1 end to end between two peers: the initiator dials the target directly (forward) and, at the
// same time, opens a temporary listener and registers an intent naming it at the rendezvous; the
// target, which learns the intent by push, dials back (reverse) when no connection from the
// initiator exists within the intent's window (S1-4). Whichever comes up first carries the data
// (S1-5); the other is closed. The initiator is the one arbiter of that race (both connections end
// at it), so the race always ends in exactly one connection.
//
// Dial-back handshake (both directions, framed as the data that follows: 2-byte length + bytes):
//   dialer   -> listener  {t:"hello", v:1, intent, from, mode, nonce}
//   listener -> dialer    {t:"auth", nonce, proof}   proof = HMAC(secret, "listener|intent|mode|nD|nL")
//   dialer   -> listener  {t:"auth", proof}          proof = HMAC(secret, "dialer|intent|mode|nD|nL")
//   initiator -> target   {t:"select"} or {t:"close", why}
// The secret comes from the cloud with the intent, to the initiator and the target only, so each
// side proves it is the other end of a live intent, bound to fresh nonces of both (no replay).
// Refused with {t:"refused", why} and closed: an unknown intent id (never registered, or not
// learned in time), a stale one (expired, or already connected), a forged one (wrong peer, bad
// proof), and a malformed handshake. The connection itself is plain TCP: what it carries next (a
// session's datagrams) is sealed end to end by the session's AEAD already.
import net from 'node:net';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import { silentLogger, type Logger } from '../log.js';
import { FrameDecoder, frame } from '../path/framing.js';
import type { Path } from '../path/path.js';
import type { Rendezvous } from './client.js';
import type { IntentMsg, RendezvousEndpoint } from './proto.js';

export type LinkDirection = 'forward' | 'reverse';
export type RefusalReason = 'unknown' | 'stale' | 'forged' | 'not-allowed' | 'malformed';

/** Most bytes queued on a link before send() drops (a LAN link must not buffer without bound). */
const MAX_QUEUE_BYTES = 512 * 1024;
const MAX_HANDSHAKE_FRAME = 2048;
/** The initiator's direct dial is repeated this often while the race is undecided. */
const FORWARD_RETRY_MS = 1000;

type Msg = { t: 'hello'; v: number; intent: string; from: string; mode: LinkDirection; nonce: string }
  | { t: 'auth'; nonce?: string; proof: string }
  | { t: 'select' } | { t: 'close'; why: string } | { t: 'refused'; why: RefusalReason };

/** One established, selected connection between two peers; a Path for a session's datagrams. */
export class PeerLink implements Path {
  readonly kind = 'tcp' as const;
  private closed = false;
  private datagramCb: ((d: Buffer) => void) | undefined;
  /** Datagrams that arrived before anyone listened (the peer may send right after selecting). */
  private early: Buffer[] = [];
  private errorCb: (e: Error) => void = () => {};
  private closeCb: (e: Error | undefined) => void = () => {};
  readonly stats = { sent: 0, received: 0, queueDrops: 0 };

  constructor(readonly sock: net.Socket, readonly peerId: string, readonly intentId: string, readonly direction: LinkDirection) {
    sock.on('error', (e) => this.die(e));
    sock.on('close', () => this.die(new Error(`link to ${peerId} closed`)));
  }

  get description(): string {
    return `peer ${this.peerId} (${this.direction}) ${this.sock.remoteAddress ?? '?'}:${this.sock.remotePort ?? 0}`;
  }

  /** Called by the handshake for each frame after selection. */
  deliver(d: Buffer): void {
    if (this.closed) return;
    this.stats.received++;
    if (this.datagramCb) this.datagramCb(d);
    else if (this.early.length < 1024) this.early.push(d);
  }

  send(datagram: Buffer): boolean {
    if (this.closed || this.sock.destroyed) return false;
    if (this.sock.writableLength > MAX_QUEUE_BYTES) {
      this.stats.queueDrops++;
      return false;
    }
    this.stats.sent++;
    this.sock.write(frame(datagram));
    return true;
  }

  onDatagram(cb: (d: Buffer) => void): void {
    this.datagramCb = cb;
    for (const d of this.early.splice(0)) cb(d);
  }
  onError(cb: (e: Error) => void): void { this.errorCb = cb; }
  onClose(cb: (e: Error | undefined) => void): void { this.closeCb = cb; }

  private die(e: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.errorCb(e);
    this.closeCb(e);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.destroy();
  }
}

interface Known {
  intent: IntentMsg;
  role: 'initiator' | 'target';
  /** Local monotonic deadline (performance.now() ms), from the cloud's relative expires_in_ms. */
  expiresAt: number;
  state: 'pending' | 'selected' | 'done';
  reverseTimer?: ReturnType<typeof setTimeout>;
  /** Initiator: settles connect(). */
  won?: (l: PeerLink) => void;
  span?: Span;
}

export interface RendezvousPeerOptions {
  /** Our identity (our certificate's CN). */
  id: string;
  rendezvous: Rendezvous;
  /** Address the listeners bind to. */
  bindHost: string;
  /** Address a target is told to dial back to (our LAN address). */
  advertiseHost: string;
  /** Port of the permanent listener for forward dials (0: any); undefined: no forward dials accepted. */
  listenPort?: number;
  /** Initiators whose intents we act on (default: any edge the cloud authenticated). */
  acceptFrom?: (initiatorId: string) => boolean;
  /** How long a forward dial may wait for its intent to arrive by push (default 3 s). */
  learnWaitMs?: number;
  handshakeTimeoutMs?: number;
  logger?: Logger;
  tracer?: Tracer;
}

export interface ConnectOptions {
  /** Intent lifetime (default 30 s). */
  ttlMs?: number;
  /** S1-4 window before the target dials back (default 1 s). */
  reverseAfterMs?: number;
  /** Give up after this long (default: the ttl). */
  timeoutMs?: number;
}

const nowMs = (): number => performance.now();

function proofOf(secret: Buffer, role: 'listener' | 'dialer', intent: string, mode: LinkDirection, nD: string, nL: string): string {
  return createHmac('sha256', secret).update(`${role}|${intent}|${mode}|${nD}|${nL}`).digest('hex');
}

function proofOk(expected: string, got: unknown): boolean {
  if (typeof got !== 'string' || got.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(expected), Buffer.from(got));
}

/** A framed-JSON conversation on a socket until it turns into a link. */
class Handshake {
  private readonly decoder: FrameDecoder;
  private waiters: ((m: Msg | undefined) => void)[] = [];
  private inbox: Msg[] = [];
  private link: PeerLink | undefined;
  /** After a select, frames are the link's datagrams even before becomeLink runs. */
  private early: Buffer[] | undefined;
  private ended = false;

  constructor(readonly sock: net.Socket, timeoutMs: number) {
    sock.setNoDelay(true);
    this.decoder = new FrameDecoder((f) => {
      if (this.link) {
        this.link.deliver(f);
        return;
      }
      if (this.early) {
        this.early.push(f);
        return;
      }
      let m: Msg | undefined;
      try {
        m = f.length <= MAX_HANDSHAKE_FRAME ? (JSON.parse(f.toString('utf8')) as Msg) : undefined;
      } catch {
        m = undefined;
      }
      if (m?.t === 'select') this.early = [];
      const w = this.waiters.shift();
      if (w) w(m ?? ({ t: 'refused', why: 'malformed' } as Msg));
      else this.inbox.push(m ?? ({ t: 'refused', why: 'malformed' } as Msg));
    });
    sock.on('data', (c: Buffer) => this.decoder.push(c));
    const end = (): void => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    };
    sock.on('close', end);
    sock.on('error', end);
    sock.setTimeout(timeoutMs, () => sock.destroy());
  }

  next(): Promise<Msg | undefined> {
    const m = this.inbox.shift();
    if (m) return Promise.resolve(m);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((r) => this.waiters.push(r));
  }

  send(m: Msg): void {
    if (!this.sock.destroyed) this.sock.write(frame(Buffer.from(JSON.stringify(m))));
  }

  refuse(why: RefusalReason): void {
    this.send({ t: 'refused', why });
    this.sock.end();
    setTimeout(() => this.sock.destroy(), 200).unref();
  }

  /** The conversation is over: frames from now on are datagrams of the link. */
  becomeLink(peerId: string, intentId: string, dir: LinkDirection): PeerLink {
    this.sock.setTimeout(0);
    const l = new PeerLink(this.sock, peerId, intentId, dir);
    this.link = l;
    for (const f of this.early?.splice(0) ?? []) l.deliver(f);
    return l;
  }
}

export class RendezvousPeer {
  private readonly log: Logger;
  private readonly tracer: Tracer;
  private readonly known = new Map<string, Known>();
  private readonly learnWaiters = new Map<string, (() => void)[]>();
  private listener: net.Server | undefined;
  private stopWatch: (() => void) | undefined;
  private linkCb: (l: PeerLink) => void = () => {};
  private closed = false;
  readonly stats = {
    refused: { unknown: 0, stale: 0, forged: 0, 'not-allowed': 0, malformed: 0 } as Record<RefusalReason, number>,
    forward: 0, reverse: 0, superseded: 0, dialBacks: 0,
  };

  constructor(private readonly opts: RendezvousPeerOptions) {
    this.log = (opts.logger ?? silentLogger).child({ component: 'rendezvous-peer', id: opts.id });
    this.tracer = opts.tracer ?? trace.getTracer('braid.rendezvous');
  }

  /** Open the permanent listener (if configured) and start learning intents addressed to us. */
  async start(): Promise<void> {
    if (this.opts.listenPort !== undefined) this.listener = await this.listen(this.opts.listenPort);
    this.stopWatch = this.opts.rendezvous.watch((i) => this.learn(i));
  }

  /** Port of the permanent listener (forward dials). */
  get port(): number {
    const a = this.listener?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  /** Links on which we are the target, once the initiator selected them. */
  onLink(cb: (l: PeerLink) => void): void {
    this.linkCb = cb;
  }

  /**
   * As the initiator: one connection to `targetId`, forward to `direct` (when given) or reverse
   * through the rendezvous, whichever is up first.
   */
  async connect(targetId: string, direct: RendezvousEndpoint | undefined, o: ConnectOptions = {}): Promise<PeerLink> {
    const ttlMs = o.ttlMs ?? 30_000;
    const span = this.tracer.startSpan('braid.rendezvous.connect', { attributes: { 'braid.rendezvous.initiator': this.opts.id, 'braid.rendezvous.target': targetId } });
    const temp = await this.listen(0);
    const port = (temp.address() as net.AddressInfo).port;
    try {
      const intent = await this.opts.rendezvous.register({ targetId, listener: { host: this.opts.advertiseHost, port }, ttlMs, reverseAfterMs: o.reverseAfterMs ?? 1000 });
      span.setAttribute('braid.rendezvous.intent', intent.intentId);
      this.prune();
      const k: Known = { intent, role: 'initiator', expiresAt: nowMs() + intent.expiresInMs, state: 'pending', span };
      const won = new Promise<PeerLink>((resolve) => { k.won = resolve; });
      this.known.set(intent.intentId, k);
      // The direct dial first, and again every FORWARD_RETRY_MS while nothing is connected (the
      // target may only just have started listening): a direct path is preferred to a dial-back.
      let dialing = false;
      const forward = (): void => {
        if (!direct || dialing || k.state !== 'pending') return;
        dialing = true;
        span.addEvent('forward.dial', { 'braid.rendezvous.address': `${direct.host}:${direct.port}` });
        void this.dial(k, direct, 'forward').finally(() => { dialing = false; });
      };
      forward();
      const redial = setInterval(forward, FORWARD_RETRY_MS);
      redial.unref();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), o.timeoutMs ?? ttlMs); });
      const link = await Promise.race([won, timeout]).finally(() => {
        clearInterval(redial);
        clearTimeout(timer);
      });
      if (!link) {
        k.state = 'done';
        await this.opts.rendezvous.resolve(intent.intentId, 'INTENT_OUTCOME_CANCELLED').catch(() => undefined);
        throw new Error(`no connection to ${targetId} within ${o.timeoutMs ?? ttlMs} ms (forward ${direct ? 'tried' : 'not tried'}, reverse through the rendezvous)`);
      }
      span.setAttribute('braid.rendezvous.direction', link.direction);
      await this.opts.rendezvous.resolve(intent.intentId, link.direction === 'forward' ? 'INTENT_OUTCOME_FORWARD' : 'INTENT_OUTCOME_REVERSE')
        .catch((e: Error) => this.log.warn({ intent: intent.intentId, err: e.message }, 'resolving the intent failed'));
      span.end();
      return link;
    } catch (e) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).message });
      span.end();
      throw e;
    } finally {
      // The temporary listener goes once the race is decided (S1-2); an accepted socket stays open.
      temp.close();
    }
  }

  close(): void {
    this.closed = true;
    this.stopWatch?.();
    this.listener?.close();
    for (const k of this.known.values()) clearTimeout(k.reverseTimer);
  }

  // ---- target side --------------------------------------------------------------------------

  private learn(i: IntentMsg): void {
    if (this.closed || i.targetId !== this.opts.id || this.known.has(i.intentId)) return;
    this.prune();
    if (this.opts.acceptFrom && !this.opts.acceptFrom(i.initiatorId)) {
      this.log.warn({ intent: i.intentId, initiator: i.initiatorId }, 'intent from an initiator we do not serve ignored');
      return;
    }
    const k: Known = { intent: i, role: 'target', expiresAt: nowMs() + i.expiresInMs, state: 'pending' };
    this.known.set(i.intentId, k);
    this.log.info({ intent: i.intentId, initiator: i.initiatorId, reverseAfterMs: i.reverseAfterMs, expiresInMs: i.expiresInMs }, 'intent learned');
    for (const w of this.learnWaiters.get(i.intentId) ?? []) w();
    this.learnWaiters.delete(i.intentId);
    // S1-4: dial back unless the initiator's own dial got through within the window. A window
    // that ends when the intent does leaves no time to dial back: none is planned (a timer
    // at the very expiry could fire a millisecond early by the wall clock and dial anyway).
    if (i.reverseAfterMs >= i.expiresInMs) return;
    k.reverseTimer = setTimeout(() => {
      if (k.state !== 'pending' || nowMs() >= k.expiresAt || this.closed) return;
      this.stats.dialBacks++;
      void this.dial(k, i.listener, 'reverse');
    }, i.reverseAfterMs);
    k.reverseTimer.unref();
  }

  private waitLearned(id: string, ms: number): Promise<void> {
    if (this.known.has(id)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.learnWaiters.get(id) ?? [];
      list.push(resolve);
      this.learnWaiters.set(id, list);
      setTimeout(() => {
        // Not learned in time: forget the waiter (ids from strangers must not pile up).
        const l = this.learnWaiters.get(id);
        if (l) {
          const rest = l.filter((w) => w !== resolve);
          if (rest.length > 0) this.learnWaiters.set(id, rest);
          else this.learnWaiters.delete(id);
        }
        resolve();
      }, ms).unref();
    });
  }

  /** Intents past their lifetime (and a minute's grace for late handshakes) are forgotten. */
  private prune(): void {
    const now = nowMs();
    for (const [id, k] of this.known) {
      if (now > k.expiresAt + 60_000) {
        clearTimeout(k.reverseTimer);
        this.known.delete(id);
      }
    }
  }

  /** Intents remembered now (for tests and status). */
  get knownIntents(): number {
    return this.known.size;
  }

  // ---- both sides ---------------------------------------------------------------------------

  private listen(port: number): Promise<net.Server> {
    const server = net.createServer((sock) => void this.accept(sock));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.opts.bindHost, () => { server.off('error', reject); resolve(server); });
    });
  }

  private refuse(h: Handshake, why: RefusalReason, detail: Record<string, unknown>): void {
    this.stats.refused[why]++;
    this.log.warn({ ...detail, why, from: `${h.sock.remoteAddress}:${h.sock.remotePort}` }, `rendezvous connection refused: ${why}`);
    const k = typeof detail['intent'] === 'string' ? this.known.get(detail['intent']) : undefined;
    k?.span?.addEvent('refused', { 'braid.rendezvous.reason': why });
    h.refuse(why);
  }

  /** Listener side of the handshake (forward dials at the target, reverse dials at the initiator). */
  private async accept(sock: net.Socket): Promise<void> {
    const h = new Handshake(sock, this.opts.handshakeTimeoutMs ?? 5000);
    const hello = await h.next();
    if (!hello) return;
    if (hello.t !== 'hello' || hello.v !== 1 || typeof hello.intent !== 'string' || typeof hello.from !== 'string'
      || (hello.mode !== 'forward' && hello.mode !== 'reverse') || typeof hello.nonce !== 'string' || !/^[0-9a-f]{32}$/.test(hello.nonce)) {
      this.refuse(h, 'malformed', {});
      return;
    }
    // A forward dial may beat the push of its intent to us: give the push a moment.
    if (hello.mode === 'forward') await this.waitLearned(hello.intent, this.opts.learnWaitMs ?? 3000);
    const k = this.known.get(hello.intent);
    const detail = { intent: hello.intent, claimed: hello.from, mode: hello.mode };
    if (!k) return this.refuse(h, 'unknown', detail);
    const expectRole = hello.mode === 'forward' ? 'target' : 'initiator';
    const peerId = k.role === 'initiator' ? k.intent.targetId : k.intent.initiatorId;
    if (k.role !== expectRole || hello.from !== peerId) return this.refuse(h, 'forged', detail);
    if (k.state !== 'pending' || nowMs() >= k.expiresAt) return this.refuse(h, 'stale', detail);
    const nL = randomBytes(16).toString('hex');
    h.send({ t: 'auth', nonce: nL, proof: proofOf(k.intent.secret, 'listener', k.intent.intentId, hello.mode, hello.nonce, nL) });
    const auth = await h.next();
    if (!auth) return;
    if (auth.t !== 'auth' || !proofOk(proofOf(k.intent.secret, 'dialer', k.intent.intentId, hello.mode, hello.nonce, nL), auth.proof)) {
      return this.refuse(h, 'forged', detail);
    }
    await this.authenticated(h, k, hello.mode);
  }

  /** Dialer side of the handshake. */
  private async dial(k: Known, to: RendezvousEndpoint, mode: LinkDirection): Promise<void> {
    const span = mode === 'reverse'
      ? this.tracer.startSpan('braid.rendezvous.dialback', { attributes: { 'braid.rendezvous.intent': k.intent.intentId, 'braid.rendezvous.initiator': k.intent.initiatorId } })
      : undefined;
    const sock = net.connect({ host: to.host, port: to.port });
    const h = new Handshake(sock, this.opts.handshakeTimeoutMs ?? 5000);
    const fail = (why: string): void => {
      this.log.info({ intent: k.intent.intentId, mode, to: `${to.host}:${to.port}`, why }, 'rendezvous dial failed');
      span?.setStatus({ code: SpanStatusCode.ERROR, message: why });
      span?.end();
      sock.destroy();
    };
    const connected = await new Promise<boolean>((resolve) => {
      sock.once('connect', () => resolve(true));
      sock.once('error', () => resolve(false));
      sock.once('close', () => resolve(false));
    });
    if (!connected) return fail('connect failed');
    const nD = randomBytes(16).toString('hex');
    h.send({ t: 'hello', v: 1, intent: k.intent.intentId, from: this.opts.id, mode, nonce: nD });
    const auth = await h.next();
    if (!auth) return fail('closed during the handshake');
    if (auth.t === 'refused') return fail(`refused: ${auth.why}`);
    if (auth.t !== 'auth' || typeof auth.nonce !== 'string' || !proofOk(proofOf(k.intent.secret, 'listener', k.intent.intentId, mode, nD, auth.nonce), auth.proof)) {
      // Whoever answered does not hold the intent's secret: not our peer.
      this.stats.refused.forged++;
      return fail('the listener could not prove the intent');
    }
    h.send({ t: 'auth', proof: proofOf(k.intent.secret, 'dialer', k.intent.intentId, mode, nD, auth.nonce) });
    span?.end();
    await this.authenticated(h, k, mode);
  }

  /** Both ends proved the intent: the initiator arbitrates, the target waits for its verdict. */
  private async authenticated(h: Handshake, k: Known, mode: LinkDirection): Promise<void> {
    const peerId = k.role === 'initiator' ? k.intent.targetId : k.intent.initiatorId;
    if (k.role === 'initiator') {
      if (k.state !== 'pending') {
        this.stats.superseded++;
        h.send({ t: 'close', why: 'superseded' });
        h.sock.end();
        return;
      }
      k.state = 'selected';
      h.send({ t: 'select' });
      this.stats[mode]++;
      k.span?.addEvent('selected', { 'braid.rendezvous.direction': mode });
      this.log.info({ intent: k.intent.intentId, peer: peerId, direction: mode }, 'rendezvous connection selected');
      k.won?.(h.becomeLink(peerId, k.intent.intentId, mode));
      return;
    }
    const verdict = await h.next();
    if (verdict?.t === 'select' && k.state === 'pending') {
      k.state = 'selected';
      clearTimeout(k.reverseTimer);
      this.stats[mode]++;
      this.log.info({ intent: k.intent.intentId, peer: peerId, direction: mode }, 'rendezvous connection selected by the initiator');
      this.linkCb(h.becomeLink(peerId, k.intent.intentId, mode));
      return;
    }
    if (verdict?.t === 'close') this.stats.superseded++;
    h.sock.destroy();
  }
}
