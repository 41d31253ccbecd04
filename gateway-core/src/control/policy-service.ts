// The cloud's braid.v1.PolicyService: one WatchPolicy stream per connected edge. On open it
// sends the edge's effective policy (global + override + overlays, from the PolicyStore), then
// every new version as the store changes, and a heartbeat while nothing changes so the edge can
// tell a dead stream (its carrier died under it) from a quiet one. It records what each edge
// acknowledged: applied, or rejected with the reason. Served on the control-plane listener
// through ControlServerOptions.services; the edge id is the verified certificate's CN.
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { silentLogger, type Logger } from '../log.js';
import { canonicalJson, PolicyValidationError } from '../policy/model.js';
import { ALL_EDGES, type EffectivePolicy, type PolicyStore } from '../policy/store.js';
import { ControlError } from './errors.js';
import { POLICY_SERVICE, policyServiceDefinition, type PolicyAckMsg, type PolicyResultName, type PolicyUpdateMsg } from './policy-proto.js';
import { peerIdentityOf } from './server.js';
import type { ExtraService } from './types.js';

export const DEFAULT_POLICY_HEARTBEAT_MS = 5000;

/** What an edge last told the cloud about its policy. */
export interface EdgePolicyState {
  edgeId: string;
  /** Remote address of the stream ("ip:port"). */
  address: string;
  connected: boolean;
  /** Version last sent to the edge (0: none). */
  sentVersion: number;
  /** Version the edge last reported running or applied. */
  appliedVersion: number;
  appliedSha256: string;
  /** The last rejection, if the edge's last answer was one. */
  rejected?: { version: number; reason: string } | undefined;
  updatedAtMs: number;
}

export interface PolicyServiceOptions {
  store: PolicyStore;
  logger?: Logger;
  /** Heartbeat interval on every stream (default 5 s). */
  heartbeatMs?: number;
  /** Called for every acknowledgement (after it was recorded). */
  onAck?: (edgeId: string, ack: PolicyAckMsg) => void;
}

export interface PolicyServiceHandle {
  service: ExtraService;
  /** Per-edge acknowledgement state, for the admin API. */
  edges(): EdgePolicyState[];
  /** Ends every stream (the edges reconnect to whichever replica serves them). */
  close(): void;
}

const RESULTS: readonly PolicyResultName[] = ['POLICY_RESULT_RUNNING', 'POLICY_RESULT_APPLIED', 'POLICY_RESULT_REJECTED'];

/** An ack off the wire, checked; a reason string otherwise. */
export function checkAck(raw: unknown): PolicyAckMsg | string {
  const a = raw as Partial<PolicyAckMsg> | null;
  if (!a || typeof a !== 'object') return 'not a PolicyAck';
  if (typeof a.version !== 'number' || !Number.isSafeInteger(a.version) || a.version < 0) return 'version must be a non-negative integer';
  if (typeof a.result !== 'string' || !RESULTS.includes(a.result as PolicyResultName)) return `result must be one of ${RESULTS.join(', ')}`;
  if (typeof a.reason !== 'string' || a.reason.length > 4096) return 'reason must be at most 4096 characters';
  if (typeof a.sha256 !== 'string' || !/^([0-9a-f]{64})?$/.test(a.sha256)) return 'sha256 must be empty or 64 lower-case hex digits';
  if (a.result === 'POLICY_RESULT_REJECTED' && a.reason === '') return 'a rejection needs a reason';
  return a as PolicyAckMsg;
}

/** The PolicyDocument for an effective policy: canonical JSON and the hash of exactly that text. */
export function policyDocument(eff: EffectivePolicy, now = Date.now()): PolicyUpdateMsg['policy'] {
  const policyJson = canonicalJson(eff.policy);
  return { version: eff.version, policyJson, sha256: createHash('sha256').update(policyJson).digest('hex'), sources: eff.sources, issuedUnixMs: now };
}

export function createPolicyService(opts: PolicyServiceOptions): PolicyServiceHandle {
  const log = (opts.logger ?? silentLogger).child({ component: 'policy-service' });
  const heartbeatMs = opts.heartbeatMs ?? DEFAULT_POLICY_HEARTBEAT_MS;
  const states = new Map<string, EdgePolicyState>();
  const closers = new Set<() => void>();

  const watch: grpc.handleBidiStreamingCall<unknown, PolicyUpdateMsg> = (call) => {
    let edgeId: string;
    try {
      edgeId = peerIdentityOf(call).commonName;
    } catch (e) {
      const err = e as ControlError;
      call.emit('error', { code: err.code, details: err.details });
      return;
    }
    const address = call.getPeer();
    const st: EdgePolicyState = states.get(edgeId) ?? { edgeId, address, connected: true, sentVersion: 0, appliedVersion: 0, appliedSha256: '', updatedAtMs: Date.now() };
    Object.assign(st, { address, connected: true, updatedAtMs: Date.now() });
    states.set(edgeId, st);
    let lastSent: { version: number; sha256: string } | undefined;
    let ended = false;
    let sawFirst = false;
    const heartbeat = setInterval(() => {
      if (!ended) call.write({ heartbeat: { version: lastSent?.version ?? 0 }, heartbeatIntervalMs: heartbeatMs } satisfies PolicyUpdateMsg);
    }, heartbeatMs);
    heartbeat.unref();

    const end = (code?: grpc.status, details?: string): void => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      unsubscribe();
      closers.delete(closeThis);
      st.connected = false;
      st.updatedAtMs = Date.now();
      if (code !== undefined) {
        log.warn({ edge: edgeId, code: grpc.status[code], details }, `policy stream of edge ${edgeId} refused: ${details}`);
        call.emit('error', { code, details });
      } else {
        call.end();
      }
    };
    const closeThis = (): void => end(grpc.status.UNAVAILABLE, 'the cloud is shutting down');
    closers.add(closeThis);

    const send = (): void => {
      if (ended) return;
      let eff: EffectivePolicy;
      try {
        eff = opts.store.effective(edgeId);
      } catch (e) {
        const reason = e instanceof PolicyValidationError ? e.message : `policy unavailable: ${(e as Error).message}`;
        end(grpc.status.FAILED_PRECONDITION, reason);
        return;
      }
      const doc = policyDocument(eff);
      if (!doc || (lastSent && lastSent.version === doc.version && lastSent.sha256 === doc.sha256)) return;
      lastSent = { version: doc.version, sha256: doc.sha256 };
      st.sentVersion = doc.version;
      log.info({ edge: edgeId, version: doc.version, sources: doc.sources.join(',') }, `policy version ${doc.version} sent to edge ${edgeId}`);
      call.write({ policy: doc, heartbeatIntervalMs: heartbeatMs } satisfies PolicyUpdateMsg);
    };

    const unsubscribe = opts.store.onChange((changed) => {
      if (changed === edgeId || changed === ALL_EDGES) send();
    });

    call.on('data', (raw: unknown) => {
      const ack = checkAck(raw);
      if (typeof ack === 'string') {
        end(grpc.status.INVALID_ARGUMENT, `invalid PolicyAck: ${ack}`);
        return;
      }
      if (!sawFirst && ack.result !== 'POLICY_RESULT_RUNNING') {
        end(grpc.status.INVALID_ARGUMENT, 'invalid PolicyAck: the first message of a stream must have result POLICY_RESULT_RUNNING');
        return;
      }
      sawFirst = true;
      st.updatedAtMs = Date.now();
      if (ack.result === 'POLICY_RESULT_REJECTED') {
        st.rejected = { version: ack.version, reason: ack.reason };
        log.warn({ edge: edgeId, version: ack.version, reason: ack.reason }, `edge ${edgeId} rejected policy version ${ack.version}: ${ack.reason}`);
      } else {
        st.appliedVersion = ack.version;
        st.appliedSha256 = ack.sha256;
        if (ack.result === 'POLICY_RESULT_APPLIED') {
          st.rejected = undefined;
          log.info({ edge: edgeId, version: ack.version }, `edge ${edgeId} applied policy version ${ack.version}`);
        }
      }
      opts.onAck?.(edgeId, ack);
    });
    call.on('end', () => end());
    call.on('cancelled', () => end());
    call.on('error', () => end());

    send();
  };

  return {
    service: { name: POLICY_SERVICE, definition: policyServiceDefinition(), implementation: { WatchPolicy: watch } },
    edges: () => [...states.values()].map((s) => ({ ...s })),
    close: () => {
      for (const c of [...closers]) c();
    },
  };
}
