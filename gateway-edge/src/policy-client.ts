// The edge's policy: watches braid.v1.PolicyService (gateway-core/src/policy/client.ts), turns
// each validated policy into the engine's knobs (compilePolicy, which throws before anything
// changes), puts it in force on the running session and on every session built later (after a
// re-establishment), and records each change as a timeline event, which Telemetry also emits as
// one span. Until the first cloud policy the session runs on its configuration (dataPlane.*).
import {
  applyToSession, compilePolicy, PolicyClient, type CompiledPolicy, type Logger, type PolicyChange, type PolicyClientStatus, type Session, type Telemetry, type TlsFiles,
} from '@braid/gateway-core';

export interface EdgePolicyOptions {
  /** "host:port" of the cloud control plane, or of the local carrier relay in front of it. */
  target: string;
  tls: TlsFiles;
  serverName?: string | undefined;
  carriers: readonly string[];
  telemetry: () => Telemetry | undefined;
  logger: Logger;
}

export class EdgePolicy {
  private compiled: CompiledPolicy | undefined;
  private session: Session | undefined;
  private readonly client: PolicyClient;

  constructor(private readonly opts: EdgePolicyOptions) {
    this.client = new PolicyClient({
      target: opts.target,
      tls: opts.tls,
      serverName: opts.serverName,
      logger: opts.logger,
      apply: (r) => {
        const compiled = compilePolicy(r.policy, opts.carriers);
        if (this.session) applyToSession(this.session, compiled);
        this.compiled = compiled;
      },
      onChange: (c) => this.record(c),
    });
  }

  start(): void {
    this.client.start();
  }

  stop(): void {
    this.client.stop();
  }

  /** A new session runs the policy in force from its first packet. */
  attach(session: Session): void {
    this.session = session;
    if (this.compiled) applyToSession(session, this.compiled);
  }

  status(): PolicyClientStatus {
    return this.client.status();
  }

  private record(c: PolicyChange): void {
    const applied = c.result === 'applied';
    this.opts.telemetry()?.event({
      kind: applied ? 'policy.applied' : 'policy.rejected',
      ...(this.session ? { sessionId: this.session.id } : {}),
      message: applied
        ? `policy version ${c.version} applied (was ${c.previousVersion}; ${c.sources.join(', ') || 'defaults'})`
        : `policy version ${c.version} rejected, version ${c.previousVersion} stays: ${c.reason ?? ''}`,
      attributes: {
        'braid.policy.version': c.version,
        'braid.policy.previous_version': c.previousVersion,
        'braid.policy.sources': c.sources.join(','),
        'braid.policy.apply_ms': Math.round(c.applyMs * 1000) / 1000,
        ...(c.reason ? { 'braid.policy.reason': c.reason.slice(0, 512) } : {}),
      },
    });
  }
}
