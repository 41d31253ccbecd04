// braid.v1.PopService (proto/braid/v1/pop.proto): the cloud serves its DestinationProber on the
// control listener; the edge asks each PoP over a kept-open mutual-TLS channel.
import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition, ServiceDefinition } from '@grpc/proto-loader';
import { braidMethod, braidService } from '../control/proto.js';
import { readTlsFiles } from '../control/peer-cert.js';
import type { ExtraService, TlsFiles } from '../control/types.js';
import { MAX_TARGETS, type DestinationProber, type TargetDelay } from './probe.js';

export const POP_SERVICE = 'braid.v1.PopService';

function definition(): ServiceDefinition {
  return braidService('pop.proto', POP_SERVICE, 'MeasureDestinations');
}
function measureMethod(): MethodDefinition<object, object, unknown, unknown> {
  return braidMethod('pop.proto', POP_SERVICE, 'MeasureDestinations');
}

interface WireDelay { target: string; rttUs: number; error: string; ageMs: number }

/** The cloud's PopService, to pass in ControlServerOptions.services. */
export function popService(prober: DestinationProber): ExtraService {
  const handler: grpc.handleUnaryCall<unknown, { delays: WireDelay[] }> = (call, callback) => {
    const req = call.request as { targets?: unknown };
    const targets = Array.isArray(req.targets) ? req.targets.filter((t): t is string => typeof t === 'string') : [];
    if (targets.length > MAX_TARGETS) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: `at most ${MAX_TARGETS} targets, got ${targets.length}` });
      return;
    }
    prober.measure(targets).then((ds) => callback(null, {
      delays: ds.map((d) => ({ target: d.target, rttUs: d.rttMs === undefined ? 0 : Math.max(1, Math.round(d.rttMs * 1000)), error: d.error ?? '', ageMs: Math.min(d.ageMs, 2 ** 32 - 1) })),
    }), (e: Error) => callback({ code: grpc.status.INTERNAL, details: e.message }));
  };
  return { name: POP_SERVICE, definition: definition(), implementation: { MeasureDestinations: handler } };
}

export interface PopClientOptions {
  target: string;
  tls: TlsFiles;
  serverName?: string;
  deadlineMs?: number;
}

/** The edge's channel to one PoP's PopService. */
export class PopClient {
  private client: grpc.Client | undefined;
  constructor(private readonly o: PopClientOptions) {}

  async measure(targets: readonly string[]): Promise<TargetDelay[]> {
    const client = await this.channel();
    const m = measureMethod();
    const raw = await new Promise<unknown>((resolve, reject) => {
      client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, { targets }, new grpc.Metadata(),
        { deadline: Date.now() + (this.o.deadlineMs ?? 3000) }, (err, v) => (err ? reject(new Error(`${this.o.target}: ${err.details || err.message}`)) : resolve(v)));
    });
    const delays = (raw as { delays?: WireDelay[] }).delays ?? [];
    // Matched by target, not position: a reply is data from the network, checked like any.
    const byTarget = new Map(delays.filter((d) => typeof d?.target === 'string').map((d) => [d.target, d]));
    return targets.map((target) => {
      const d = byTarget.get(target);
      const ok = d !== undefined && Number.isFinite(d.rttUs) && d.rttUs > 0;
      return { target, rttMs: ok ? d.rttUs / 1000 : undefined, error: ok ? undefined : (d?.error || 'missing from the reply'), ageMs: d?.ageMs ?? 0 };
    });
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }

  private async channel(): Promise<grpc.Client> {
    if (this.client) return this.client;
    const { ca, cert, key } = await readTlsFiles(this.o.tls);
    const opts: grpc.ChannelOptions = {};
    if (this.o.serverName) {
      opts['grpc.ssl_target_name_override'] = this.o.serverName;
      opts['grpc.default_authority'] = this.o.serverName;
    }
    this.client = new grpc.Client(this.o.target, grpc.credentials.createSsl(ca, key, cert), opts);
    return this.client;
  }
}
