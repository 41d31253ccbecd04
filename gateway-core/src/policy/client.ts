// The edge's end of braid.v1.PolicyService.WatchPolicy: keeps one stream to the cloud up,
// validates every policy completely before anything is applied, applies it through `apply`
// (which must be all-or-nothing), and acknowledges each version, applied or rejected with the
// reason. A stream is considered dead after three heartbeat intervals without a message (a
// carrier that died under a TCP connection does not close it); it is then cancelled and opened
// again with exponential backoff and full jitter, on a new channel so that a new TCP connection
// is made (over whichever carrier is alive, see control/carrier-relay.ts).
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { statusName } from '../control/errors.js';
import { parseHostPort } from '../control/listen-address.js';
import { readTlsFiles, type TlsMaterial } from '../control/peer-cert.js';
import { watchPolicyMethod, type PolicyAckMsg, type PolicyDocumentMsg, type PolicyUpdateMsg } from '../control/policy-proto.js';
import type { TlsFiles } from '../control/types.js';
import { MAX_CONTROL_MESSAGE_BYTES } from '../control/validate.js';
import { silentLogger, type Logger } from '../log.js';
import { parsePolicyJson, PolicyValidationError, type Policy } from './model.js';

export interface Backoff {
  /** First retry after about this long (default 250 ms). */
  initialMs: number;
  /** Never wait longer than this (default 30 s). */
  maxMs: number;
  /** Growth per failed attempt (default 2). */
  multiplier: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 250, maxMs: 30_000, multiplier: 2 };

/** "Full jitter": uniform in [ceiling/2, ceiling], ceiling = min(max, initial * m^attempt). */
export function backoffDelayMs(attempt: number, b: Backoff = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(b.maxMs, b.initialMs * b.multiplier ** Math.max(0, attempt));
  return ceiling / 2 + random() * (ceiling / 2);
}

/** A policy that passed validation, as handed to `apply`. */
export interface ReceivedPolicy {
  version: number;
  sha256: string;
  sources: string[];
  policy: Policy;
}

export interface PolicyChange {
  version: number;
  previousVersion: number;
  result: 'applied' | 'rejected';
  reason?: string;
  sources: string[];
  /** Time from receiving the update to the ack being sent, ms. */
  applyMs: number;
}

export interface PolicyClientOptions {
  /** "host:port" of the cloud control plane (or of a local carrier relay in front of it). */
  target: string;
  tls: TlsFiles;
  serverName?: string | undefined;
  /**
   * Applies a validated policy to the running gateway, all or nothing: it throws (and changes
   * nothing) or returns after the whole policy is in force.
   */
  apply(p: ReceivedPolicy): void | Promise<void>;
  /** Called once per policy change (applied or rejected), for spans and the event timeline. */
  onChange?: (c: PolicyChange) => void;
  logger?: Logger;
  backoff?: Partial<Backoff>;
  /** Used until the cloud tells its heartbeat interval (default 5 s). */
  heartbeatMs?: number;
  /** HTTP/2 keepalive pings on the channel (default 10 s, 5 s to answer). */
  keepaliveMs?: number;
  /** Called before each connection attempt; may return another target (a relay, another PoP). */
  targetFor?: (attempt: number) => string;
}

export interface PolicyClientStatus {
  connected: boolean;
  /** Version in force (0: the built-in policy). */
  version: number;
  sha256: string;
  sources: string[];
  appliedAtMs: number;
  policy: Policy | undefined;
  /** Streams opened since start. */
  streams: number;
  lastError: string;
  lastRejected?: { version: number; reason: string } | undefined;
}

export class PolicyClient {
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private tls: TlsMaterial | undefined;
  private client: grpc.Client | undefined;
  private call: grpc.ClientDuplexStream<PolicyAckMsg, unknown> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopped = false;
  private heartbeatMs: number;
  /** Updates are applied one at a time, in arrival order. */
  private chain: Promise<void> = Promise.resolve();
  private readonly st: PolicyClientStatus = { connected: false, version: 0, sha256: '', sources: [], appliedAtMs: 0, policy: undefined, streams: 0, lastError: '' };

  constructor(private readonly opts: PolicyClientOptions) {
    parseHostPort(opts.target, false);
    this.log = (opts.logger ?? silentLogger).child({ component: 'policy-client' });
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.heartbeatMs = opts.heartbeatMs ?? 5000;
  }

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  status(): PolicyClientStatus {
    return { ...this.st, sources: [...this.st.sources] };
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    clearTimeout(this.watchdog);
    this.call?.cancel();
    this.call = undefined;
    this.client?.close();
    this.client = undefined;
    this.st.connected = false;
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    try {
      this.tls ??= await readTlsFiles(this.opts.tls);
    } catch (e) {
      this.fail(`cannot read the control-plane certificates: ${(e as Error).message}`);
      return;
    }
    if (this.stopped) return;
    this.client?.close();
    const target = this.opts.targetFor?.(this.attempt) ?? this.opts.target;
    const channelOptions: grpc.ChannelOptions = {
      'grpc.max_receive_message_length': MAX_CONTROL_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_CONTROL_MESSAGE_BYTES,
      'grpc.keepalive_time_ms': this.opts.keepaliveMs ?? 10_000,
      'grpc.keepalive_timeout_ms': Math.max(1000, (this.opts.keepaliveMs ?? 10_000) / 2),
      'grpc.keepalive_permit_without_calls': 1,
      // grpc-js would otherwise reconnect on its own with its own backoff; this client owns reconnection.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
    };
    if (this.opts.serverName) {
      channelOptions['grpc.ssl_target_name_override'] = this.opts.serverName;
      channelOptions['grpc.default_authority'] = this.opts.serverName;
    }
    const client = new grpc.Client(target, grpc.credentials.createSsl(this.tls.ca, this.tls.key, this.tls.cert), channelOptions);
    this.client = client;
    const m = watchPolicyMethod();
    const call = client.makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, new grpc.Metadata()) as grpc.ClientDuplexStream<PolicyAckMsg, unknown>;
    this.call = call;
    this.st.streams++;
    let open = true;
    /** Highest version received on this stream: within one stream versions only grow. */
    let streamNewest = 0;
    call.write({ version: this.st.version, result: 'POLICY_RESULT_RUNNING', reason: '', sha256: this.st.sha256 });
    this.armWatchdog(call);
    call.on('data', (raw: unknown) => {
      if (!open) return;
      if (!this.st.connected) {
        this.st.connected = true;
        this.attempt = 0;
        this.log.info({ target }, 'policy stream up');
      }
      const u = raw as PolicyUpdateMsg;
      // The cloud's heartbeat interval, bounded: a bogus 0 or a day must not disable the watchdog.
      if (u.heartbeatIntervalMs > 0) this.heartbeatMs = Math.min(60_000, Math.max(50, u.heartbeatIntervalMs));
      this.armWatchdog(call);
      if (u.policy) {
        const doc = u.policy;
        const newest = streamNewest;
        streamNewest = Math.max(streamNewest, doc.version);
        this.chain = this.chain.then(() => this.handle(call, doc, newest)).catch((e: unknown) => this.log.error({ err: (e as Error).message }, 'policy handling failed'));
      }
    });
    const down = (why: string): void => {
      if (!open) return;
      open = false;
      clearTimeout(this.watchdog);
      if (this.call === call) this.call = undefined;
      this.st.connected = false;
      this.fail(why);
    };
    call.on('error', (e: grpc.ServiceError) => down(`${statusName(e.code)}: ${e.details}`));
    call.on('end', () => down('the cloud ended the stream'));
  }

  /** Validate fully, apply, ack; never half a policy. */
  /**
   * `newestBefore`: the highest version this stream delivered before `doc`. An older one on the
   * same stream is refused; across streams the cloud's word is taken (a cloud restarted without
   * policy.stateFile counts versions from 1 again, and its policy is still the one to run).
   */
  private async handle(call: grpc.ClientDuplexStream<PolicyAckMsg, unknown>, doc: PolicyDocumentMsg, newestBefore: number): Promise<void> {
    const started = performance.now();
    const previousVersion = this.st.version;
    const ack = (result: PolicyAckMsg['result'], reason = ''): void => {
      call.write({ version: doc.version, result, reason, sha256: this.st.sha256 });
    };
    if (doc.version === this.st.version && doc.sha256 === this.st.sha256) {
      ack('POLICY_RESULT_APPLIED');
      return;
    }
    let received: ReceivedPolicy;
    try {
      if (doc.version < newestBefore) throw new PolicyValidationError([{ path: 'version', message: `version ${doc.version} is older than version ${newestBefore} sent before on this stream` }], 'policy update');
      if (doc.version < this.st.version) this.log.warn({ version: doc.version, inForce: this.st.version }, 'the cloud\'s policy version went back (a restart without policy.stateFile?); applying its policy');
      const digest = createHash('sha256').update(doc.policyJson).digest('hex');
      if (digest !== doc.sha256) throw new PolicyValidationError([{ path: 'sha256', message: `does not match the policy text (got ${doc.sha256.slice(0, 12)}..., text hashes to ${digest.slice(0, 12)}...)` }], 'policy update');
      received = { version: doc.version, sha256: doc.sha256, sources: doc.sources, policy: parsePolicyJson(doc.policyJson, `policy version ${doc.version}`) };
      await this.opts.apply(received);
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      this.st.lastRejected = { version: doc.version, reason };
      this.log.warn({ version: doc.version, reason }, `policy version ${doc.version} rejected; version ${this.st.version} stays in force`);
      ack('POLICY_RESULT_REJECTED', reason.slice(0, 4096));
      this.opts.onChange?.({ version: doc.version, previousVersion, result: 'rejected', reason, sources: doc.sources, applyMs: performance.now() - started });
      return;
    }
    Object.assign(this.st, { version: doc.version, sha256: doc.sha256, sources: [...doc.sources], appliedAtMs: Date.now(), policy: received.policy, lastRejected: undefined });
    ack('POLICY_RESULT_APPLIED');
    this.log.info({ version: doc.version, sources: doc.sources.join(',') }, `policy version ${doc.version} applied`);
    this.opts.onChange?.({ version: doc.version, previousVersion, result: 'applied', sources: doc.sources, applyMs: performance.now() - started });
  }

  private armWatchdog(call: grpc.ClientDuplexStream<PolicyAckMsg, unknown>): void {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      this.log.warn({ silentMs: 3 * this.heartbeatMs }, 'policy stream silent for three heartbeat intervals: reconnecting');
      call.cancel();
    }, 3 * this.heartbeatMs);
    this.watchdog.unref();
  }

  private fail(why: string): void {
    this.st.lastError = why;
    if (this.stopped) return;
    const delay = backoffDelayMs(this.attempt++, this.backoff);
    this.log.warn({ err: why, retryMs: Math.round(delay) }, 'policy stream down; reconnecting');
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.connect(), delay);
    this.retry.unref();
  }
}

