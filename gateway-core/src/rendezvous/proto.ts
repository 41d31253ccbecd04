// Loads proto/braid/v1/rendezvous.proto (braid.v1.RendezvousService) like control/proto.ts loads
// the session service, gives the messages TypeScript shapes and checks what comes off the wire.
import type { MethodDefinition, ServiceDefinition } from '@grpc/proto-loader';
import { braidMethod, braidService } from '../control/proto.js';

export const RENDEZVOUS_SERVICE = 'braid.v1.RendezvousService';

export type IntentOutcome = 'INTENT_OUTCOME_UNSPECIFIED' | 'INTENT_OUTCOME_FORWARD' | 'INTENT_OUTCOME_REVERSE' | 'INTENT_OUTCOME_CANCELLED';
export const OUTCOMES: readonly IntentOutcome[] = ['INTENT_OUTCOME_FORWARD', 'INTENT_OUTCOME_REVERSE', 'INTENT_OUTCOME_CANCELLED'];

export interface RendezvousEndpoint {
  host: string;
  port: number;
}

/** braid.v1.RegisterIntentRequest */
export interface RegisterIntentRequest {
  targetId: string;
  listener: RendezvousEndpoint;
  ttlMs: number;
  reverseAfterMs: number;
}

/** braid.v1.Intent */
export interface IntentMsg {
  intentId: string;
  initiatorId: string;
  targetId: string;
  listener: RendezvousEndpoint;
  reverseAfterMs: number;
  expiresInMs: number;
  /** 32 bytes. */
  secret: Buffer;
}

/** braid.v1.ResolveIntentRequest */
export interface ResolveIntentRequest {
  intentId: string;
  outcome: IntentOutcome;
}

export const MIN_TTL_MS = 1000;
export const MAX_TTL_MS = 600_000;
export const DEFAULT_TTL_MS = 60_000;
export const SECRET_LEN = 32;
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$/;
const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/;

export function rendezvousServiceDefinition(): ServiceDefinition {
  return braidService('rendezvous.proto', RENDEZVOUS_SERVICE, 'RegisterIntent');
}

export function rendezvousMethod(name: 'RegisterIntent' | 'WatchIntents' | 'ResolveIntent'): MethodDefinition<object, object, unknown, unknown> {
  return braidMethod('rendezvous.proto', RENDEZVOUS_SERVICE, name);
}

export const isIdentity = (s: unknown): s is string => typeof s === 'string' && ID.test(s);

function endpointProblem(e: unknown): string | undefined {
  const x = e as Partial<RendezvousEndpoint> | null | undefined;
  if (!x || typeof x !== 'object') return 'listener is required';
  if (typeof x.host !== 'string' || !HOST.test(x.host)) return 'listener.host must be an IPv4 address or host name';
  if (typeof x.port !== 'number' || !Number.isInteger(x.port) || x.port < 1 || x.port > 65535) return 'listener.port must be 1..65535';
  return undefined;
}

/** A RegisterIntentRequest off the wire, checked (defaults applied), or the reason it is refused. */
export function checkRegister(raw: unknown, caller: string): RegisterIntentRequest | string {
  const r = raw as Partial<RegisterIntentRequest> | null;
  if (!r || typeof r !== 'object') return 'not a RegisterIntentRequest';
  if (!isIdentity(r.targetId)) return 'target_id must be an edge identity';
  if (r.targetId === caller) return 'an intent cannot target its own initiator';
  const ep = endpointProblem(r.listener);
  if (ep) return ep;
  const ttlMs = r.ttlMs === 0 || r.ttlMs === undefined ? DEFAULT_TTL_MS : r.ttlMs;
  if (!Number.isInteger(ttlMs) || ttlMs < MIN_TTL_MS || ttlMs > MAX_TTL_MS) return `ttl_ms must be ${MIN_TTL_MS}..${MAX_TTL_MS} (or 0 for ${DEFAULT_TTL_MS})`;
  const reverseAfterMs = r.reverseAfterMs ?? 0;
  if (!Number.isInteger(reverseAfterMs) || reverseAfterMs < 0 || reverseAfterMs > ttlMs) return 'reverse_after_ms must be 0..ttl_ms';
  return { targetId: r.targetId, listener: { host: r.listener!.host, port: r.listener!.port }, ttlMs, reverseAfterMs };
}

/** An Intent off the wire (edge side), checked. */
export function checkIntent(raw: unknown): IntentMsg | string {
  const i = raw as Partial<IntentMsg> | null;
  if (!i || typeof i !== 'object') return 'not an Intent';
  if (typeof i.intentId !== 'string' || !/^[0-9a-f]{32}$/.test(i.intentId)) return 'intent_id must be 32 hex digits';
  if (!isIdentity(i.initiatorId) || !isIdentity(i.targetId)) return 'initiator_id and target_id must be identities';
  const ep = endpointProblem(i.listener);
  if (ep) return ep;
  if (!Buffer.isBuffer(i.secret) || i.secret.length !== SECRET_LEN) return `secret must be ${SECRET_LEN} bytes`;
  if (typeof i.expiresInMs !== 'number' || typeof i.reverseAfterMs !== 'number') return 'expires_in_ms and reverse_after_ms are required';
  return i as IntentMsg;
}
