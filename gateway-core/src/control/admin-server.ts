// The admin API server (braid.v1.AdminService) on its own mTLS listener. It reuses the control
// plane's TLS termination (listenMtls in server.ts), and adds authorisation: a verified client
// certificate is not enough, its subject must carry the operator OU. An edge's certificate,
// made by the same CA for the session service, is refused here with PERMISSION_DENIED and a
// reason the CLI can show.
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { silentLogger, type Logger } from '../log.js';
import type { EventLog } from '../telemetry/events.js';
import type { TelemetryView } from '../telemetry/view.js';
import { adminApiFrom, type AdminApi, type GatewayIdentity } from './admin-api.js';
import { ADMIN_SERVICE, adminServiceDefinition } from './admin-proto.js';
import type { AdminPolicyApi } from './admin-policy.js';
import { ControlError } from './errors.js';
import { commonName, hasCertificate } from './peer-cert.js';
import { listenMtls } from './server.js';
import { addReflection } from './proto.js';
import type { ControlServer, TlsFiles } from './types.js';

export interface AdminGrpcOptions {
  listen: string;
  tls: TlsFiles;
  /** Subject OU an operator certificate must have. */
  operatorOu: string;
  api: AdminApi;
  logger?: Logger;
}

function ouOf(subject: { OU?: string | string[] } | undefined): string[] {
  const ou = subject?.OU;
  return ou === undefined ? [] : Array.isArray(ou) ? ou : [ou];
}

/** Every call needs a verified certificate (UNAUTHENTICATED) with the operator OU (PERMISSION_DENIED). */
function requireOperator(log: Logger, operatorOu: string): grpc.ServerInterceptor {
  return (method, call) => new grpc.ServerInterceptingCall(call, {
    start: (next) => {
      next({
        onReceiveMetadata: (metadata, mdNext) => {
          const cert = call.getAuthContext()?.sslPeerCertificate;
          if (!hasCertificate(cert)) {
            call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: 'a trusted client certificate is required' });
            return;
          }
          const ous = ouOf(cert.subject as { OU?: string | string[] });
          if (!ous.includes(operatorOu)) {
            const cn = commonName(cert.subject);
            log.warn({ peer: call.getPeer(), cn, ou: ous.join('+') }, `admin call refused: ${method.path} from CN=${cn} without OU=${operatorOu}`);
            call.sendStatus({
              code: grpc.status.PERMISSION_DENIED,
              details: `certificate CN=${cn}${ous.length ? ` OU=${ous.join('+')}` : ''} is not an operator certificate (OU=${operatorOu} required)`,
            });
            return;
          }
          mdNext(metadata);
        },
      });
    },
  });
}

/** A refusal (ControlError) keeps its status and reason; anything else is INTERNAL. */
function unary<Req, Res>(log: Logger, fn: (req: Req) => Res | Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve().then(() => fn(call.request)).then((r) => callback(null, r), (e: unknown) => {
      if (e instanceof ControlError) callback({ code: e.code, details: e.details });
      else {
        log.error({ err: (e as Error).message }, 'admin call failed');
        callback({ code: grpc.status.INTERNAL, details: (e as Error).message });
      }
    });
  };
}

const noPolicy = (): never => {
  throw new ControlError(grpc.status.UNIMPLEMENTED, 'this gateway has no policy plane');
};

export async function startAdminGrpcServer(opts: AdminGrpcOptions): Promise<ControlServer> {
  const log = (opts.logger ?? silentLogger).child({ component: 'admin-api' });
  const grpcServer = new grpc.Server({ interceptors: [requireOperator(log, opts.operatorOu)], 'grpc.max_concurrent_streams': 16 });
  new HealthImplementation({ '': 'SERVING', [ADMIN_SERVICE]: 'SERVING' }).addToServer(grpcServer);
  addReflection(grpcServer, ['admin.proto'], [ADMIN_SERVICE]);
  const api = opts.api;
  grpcServer.addService(adminServiceDefinition(), {
    GetStatus: unary(log, () => api.status()),
    ListPaths: unary(log, () => ({ paths: api.paths() })),
    ListSessions: unary(log, () => ({ sessions: api.sessions() })),
    ListEvents: unary(log, (req: { afterSeq?: number; limit?: number }) => ({ events: api.events(Number(req.afterSeq ?? 0), Number(req.limit ?? 0)) })),
    GetPolicy: unary(log, (req: { edgeId?: string }) => (api.policy ? api.policy.get(String(req.edgeId ?? '')) : noPolicy())),
    SetPolicy: unary(log, (req: { policyJson?: string; edgeId?: string; clear?: boolean }) => (api.policy
      ? api.policy.set({ policyJson: String(req.policyJson ?? ''), edgeId: String(req.edgeId ?? ''), clear: req.clear === true })
      : noPolicy())),
  });
  const l = await listenMtls({ listen: opts.listen, tls: opts.tls, log, grpcServer, peerKind: 'operator', what: 'admin API' });
  return { port: l.port, close: () => l.close() };
}

export interface GatewayAdminConfig {
  grpcListen: string;
  tls?: TlsFiles | undefined;
  operatorOu: string;
}

/**
 * The admin API of a gateway when admin.grpcListen is set (undefined otherwise). Without
 * admin.tls the cloud serves with its control-plane certificate (`fallbackTls`); the edge has
 * only a client certificate there, so it needs admin.tls.
 */
export async function startGatewayAdminApi(
  admin: GatewayAdminConfig, fallbackTls: TlsFiles | undefined, gw: GatewayIdentity, view: TelemetryView, events: EventLog, logger?: Logger,
  policy?: AdminPolicyApi,
): Promise<ControlServer | undefined> {
  if (!admin.grpcListen) return undefined;
  const tls = admin.tls ?? fallbackTls;
  if (!tls) throw new Error(`admin.grpcListen is set but admin.tls is not: the ${gw.role}'s admin API needs a server certificate (admin.tls.ca/cert/key)`);
  return startAdminGrpcServer({
    listen: admin.grpcListen, tls, operatorOu: admin.operatorOu, api: { ...adminApiFrom(gw, view, events), ...(policy ? { policy } : {}) }, ...(logger ? { logger } : {}),
  });
}
