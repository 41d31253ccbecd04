// The cloud's braid.v1.RendezvousService (S1): intents registered by initiators, pushed to their
// targets, expired after their lifetime, resolved by either end. Identities come only from the
// verified client certificates (peerIdentityOf): an initiator cannot register in another's name,
// and a target sees only the intents addressed to its own certificate. Each intent gets a random
// secret that the two ends use to prove themselves to each other on the dial-back (link.ts).
//
// Telemetry: a server span per call, and one span per intent from registration to its end
// (resolved forward or reverse, cancelled, expired), with a span event when it reaches its target.
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode, context, trace, type Span, type Tracer } from '@opentelemetry/api';
import { silentLogger, type Logger } from '../log.js';
import { ControlError } from '../control/errors.js';
import { peerIdentityOf } from '../control/server.js';
import type { ExtraService } from '../control/types.js';
import {
  OUTCOMES, RENDEZVOUS_SERVICE, checkRegister, rendezvousServiceDefinition,
  type IntentMsg, type IntentOutcome, type ResolveIntentRequest,
} from './proto.js';

export interface RendezvousServiceOptions {
  logger?: Logger;
  /** Default: the global tracer (the gateway's Telemetry registers the exporting provider). */
  tracer?: Tracer;
  /** Live intents one initiator may hold at once (default 64). */
  maxIntentsPerInitiator?: number;
  /** Milliseconds now (tests). */
  now?: () => number;
}

interface StoredIntent {
  msg: Omit<IntentMsg, 'expiresInMs'>;
  expiresAt: number;
  timer: ReturnType<typeof setTimeout>;
  span: Span;
}

export interface IntentView {
  intentId: string;
  initiatorId: string;
  targetId: string;
  listener: string;
  expiresInMs: number;
}

export interface RendezvousServiceHandle {
  service: ExtraService;
  /** Live intents (no secrets), for status and tests. */
  intents(): IntentView[];
  /** Counters: registered, delivered, resolved by outcome, expired, refused. */
  readonly stats: { registered: number; delivered: number; expired: number; refused: number; resolved: Record<string, number> };
  close(): void;
}

function refuse<T>(cb: grpc.sendUnaryData<T>, e: unknown): void {
  const err = e instanceof ControlError ? e : new ControlError(grpc.status.INTERNAL, (e as Error).message);
  cb({ code: err.code, details: err.details });
}

export function createRendezvousService(opts: RendezvousServiceOptions = {}): RendezvousServiceHandle {
  const log = (opts.logger ?? silentLogger).child({ component: 'rendezvous' });
  const tracer = opts.tracer ?? trace.getTracer('braid.rendezvous');
  const now = opts.now ?? Date.now;
  const maxPer = opts.maxIntentsPerInitiator ?? 64;
  const intents = new Map<string, StoredIntent>();
  const watchers = new Map<string, Set<grpc.ServerWritableStream<unknown, IntentMsg>>>();
  const stats = { registered: 0, delivered: 0, expired: 0, refused: 0, resolved: {} as Record<string, number> };
  let closed = false;

  const wire = (s: StoredIntent): IntentMsg => ({ ...s.msg, expiresInMs: Math.max(0, s.expiresAt - now()) });

  const deliver = (s: StoredIntent, to: grpc.ServerWritableStream<unknown, IntentMsg>): void => {
    if (s.expiresAt <= now()) return;
    to.write(wire(s));
    stats.delivered++;
    s.span.addEvent('delivered', { 'braid.rendezvous.target': s.msg.targetId });
  };

  const finish = (id: string, outcome: string, by?: string): void => {
    const s = intents.get(id);
    if (!s) return;
    intents.delete(id);
    clearTimeout(s.timer);
    s.span.setAttribute('braid.rendezvous.outcome', outcome);
    if (by) s.span.setAttribute('braid.rendezvous.resolved_by', by);
    if (outcome === 'expired') s.span.setStatus({ code: SpanStatusCode.ERROR, message: 'expired without a connection' });
    s.span.end();
  };

  /** One server span per call; refusals are recorded on it. */
  const serverSpan = (method: string, caller: string | undefined): Span =>
    tracer.startSpan(`${RENDEZVOUS_SERVICE}/${method}`, {
      kind: SpanKind.SERVER,
      attributes: { 'rpc.system': 'grpc', 'rpc.service': RENDEZVOUS_SERVICE, 'rpc.method': method, ...(caller ? { 'braid.edge.id': caller } : {}) },
    });
  const failSpan = (span: Span, e: unknown): void => {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).message });
    span.end();
  };

  const register: grpc.handleUnaryCall<unknown, IntentMsg> = (call, cb) => {
    let caller: string | undefined;
    const span = serverSpan('RegisterIntent', undefined);
    try {
      if (closed) throw new ControlError(grpc.status.UNAVAILABLE, 'the cloud is shutting down');
      caller = peerIdentityOf(call).commonName;
      span.setAttribute('braid.edge.id', caller);
      const req = checkRegister(call.request, caller);
      if (typeof req === 'string') throw new ControlError(grpc.status.INVALID_ARGUMENT, `invalid RegisterIntentRequest: ${req}`);
      let mine = 0;
      for (const s of intents.values()) if (s.msg.initiatorId === caller) mine++;
      if (mine >= maxPer) throw new ControlError(grpc.status.RESOURCE_EXHAUSTED, `edge ${caller} already has ${mine} live intents (at most ${maxPer})`);
      const intentId = randomBytes(16).toString('hex');
      const msg: StoredIntent['msg'] = {
        intentId, initiatorId: caller, targetId: req.targetId, listener: req.listener, reverseAfterMs: req.reverseAfterMs, secret: randomBytes(32),
      };
      const attrs = {
        'braid.rendezvous.intent': intentId, 'braid.rendezvous.initiator': caller, 'braid.rendezvous.target': req.targetId,
        'braid.rendezvous.listener': `${req.listener.host}:${req.listener.port}`, 'braid.rendezvous.ttl_ms': req.ttlMs,
      };
      span.setAttributes(attrs);
      const stored: StoredIntent = {
        msg,
        expiresAt: now() + req.ttlMs,
        timer: setTimeout(() => {
          stats.expired++;
          log.info({ intent: intentId, initiator: caller, target: req.targetId }, 'rendezvous intent expired');
          finish(intentId, 'expired');
        }, req.ttlMs),
        // The intent's lifetime is a child of the registration call.
        span: tracer.startSpan('braid.rendezvous.intent', { attributes: attrs }, trace.setSpan(context.active(), span)),
      };
      stored.timer.unref();
      intents.set(intentId, stored);
      stats.registered++;
      log.info({ intent: intentId, initiator: caller, target: req.targetId, listener: attrs['braid.rendezvous.listener'], ttlMs: req.ttlMs }, 'rendezvous intent registered');
      for (const w of watchers.get(req.targetId) ?? []) deliver(stored, w);
      span.end();
      cb(null, wire(stored));
    } catch (e) {
      stats.refused++;
      log.warn({ caller, err: (e as Error).message }, 'rendezvous intent refused');
      failSpan(span, e);
      refuse(cb, e);
    }
  };

  const watch: grpc.handleServerStreamingCall<unknown, IntentMsg> = (call) => {
    const span = serverSpan('WatchIntents', undefined);
    let target: string;
    try {
      if (closed) throw new ControlError(grpc.status.UNAVAILABLE, 'the cloud is shutting down');
      target = peerIdentityOf(call).commonName;
    } catch (e) {
      const err = e as ControlError;
      failSpan(span, e);
      call.emit('error', { code: err.code, details: err.details });
      return;
    }
    span.setAttribute('braid.edge.id', target);
    const set = watchers.get(target) ?? new Set();
    watchers.set(target, set);
    set.add(call);
    let pending = 0;
    for (const s of intents.values()) {
      if (s.msg.targetId === target) {
        deliver(s, call);
        pending++;
      }
    }
    span.setAttribute('braid.rendezvous.pending', pending);
    log.info({ target, pending }, 'rendezvous watcher connected');
    const done = (): void => {
      set.delete(call);
      if (set.size === 0 && watchers.get(target) === set) watchers.delete(target);
      span.end();
    };
    call.on('cancelled', done);
    call.on('close', done);
    call.on('error', done);
  };

  const resolve: grpc.handleUnaryCall<unknown, object> = (call, cb) => {
    const span = serverSpan('ResolveIntent', undefined);
    try {
      const caller = peerIdentityOf(call).commonName;
      span.setAttribute('braid.edge.id', caller);
      const r = call.request as Partial<ResolveIntentRequest> | null;
      if (!r || typeof r.intentId !== 'string' || !OUTCOMES.includes(r.outcome as IntentOutcome)) {
        throw new ControlError(grpc.status.INVALID_ARGUMENT, `invalid ResolveIntentRequest: intent_id and an outcome (${OUTCOMES.join(', ')}) are required`);
      }
      span.setAttribute('braid.rendezvous.intent', r.intentId);
      const s = intents.get(r.intentId);
      if (!s) throw new ControlError(grpc.status.NOT_FOUND, `no live intent ${r.intentId} (expired, resolved, or never registered)`);
      if (caller !== s.msg.initiatorId && caller !== s.msg.targetId) {
        throw new ControlError(grpc.status.PERMISSION_DENIED, `edge ${caller} is neither end of intent ${r.intentId}`);
      }
      const outcome = (r.outcome as string).replace('INTENT_OUTCOME_', '').toLowerCase();
      stats.resolved[outcome] = (stats.resolved[outcome] ?? 0) + 1;
      log.info({ intent: r.intentId, by: caller, outcome }, 'rendezvous intent resolved');
      finish(r.intentId, outcome, caller);
      span.end();
      cb(null, {});
    } catch (e) {
      failSpan(span, e);
      refuse(cb, e);
    }
  };

  return {
    service: {
      name: RENDEZVOUS_SERVICE,
      definition: rendezvousServiceDefinition(),
      implementation: { RegisterIntent: register, WatchIntents: watch, ResolveIntent: resolve },
    },
    intents: () => [...intents.values()].map((s) => ({
      intentId: s.msg.intentId, initiatorId: s.msg.initiatorId, targetId: s.msg.targetId,
      listener: `${s.msg.listener.host}:${s.msg.listener.port}`, expiresInMs: Math.max(0, s.expiresAt - now()),
    })),
    stats,
    close: () => {
      closed = true;
      for (const id of [...intents.keys()]) finish(id, 'cancelled');
      for (const set of watchers.values()) for (const w of set) w.end();
      watchers.clear();
    },
  };
}
