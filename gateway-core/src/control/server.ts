// The cloud side of the control plane: gRPC SessionService + grpc.health.v1 over mutual TLS.
//
// Why TLS is terminated here and not by grpc-js: grpc-js (ServerCredentials.createSsl with
// checkClientCertificate) lets node:tls destroy an untrusted client's socket right after the
// handshake; neither the reason nor the certificate reaches the application, so an edge with a
// wrong certificate would be refused silently. Instead we run our own tls.Server that requests and verifies the
// client certificate against our CA only, and then decide on each connection:
//   - not verified (no certificate, other CA, expired, not for clientAuth...): one clear log
//     line and the socket is destroyed before a single HTTP/2 byte is read, so neither the
//     session service nor the health service is reachable;
//   - verified: the TLS socket is handed to grpc-js through its connection injector.
// A server interceptor then checks, for every call of every service, that the call arrived on
// a verified TLS connection (defense in depth: should a connection ever reach grpc-js another
// way, it gets UNAUTHENTICATED, not service). See docs/control-plane.md.
import type { Socket } from 'node:net';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { silentLogger, type Logger } from '../log.js';
import { ControlError, statusName } from './errors.js';
import { parseHostPort } from './listen-address.js';
import { clean, commonName, distinguishedName, hasCertificate, readTlsFiles } from './peer-cert.js';
import { CONTROL_PROTO_FILES, PROTOCOL_VERSION, SESSION_SERVICE, addReflection, sessionServiceDefinition } from './proto.js';
import type { ControlServer, ControlServerOptions, HelloReply, PeerIdentity, TlsFiles } from './types.js';
import { MAX_CONTROL_MESSAGE_BYTES, validateHelloReply, validateHelloRequest } from './validate.js';

/** A client has this long to finish the TLS handshake. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** close() waits this long for calls in progress before cancelling them. */
const SHUTDOWN_GRACE_MS = 2_000;

function remote(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  const a = socket.remoteAddress ?? 'unknown';
  return `${a.includes(':') ? `[${a}]` : a}:${socket.remotePort ?? 0}`;
}

/** Every call of every service must have come over a verified mTLS connection. */
export function requireVerifiedPeer(log: Logger): grpc.ServerInterceptor {
  return (method, call) => new grpc.ServerInterceptingCall(call, {
    start: (next) => {
      next({
        onReceiveMetadata: (metadata, mdNext) => {
          if (hasCertificate(call.getAuthContext()?.sslPeerCertificate)) {
            mdNext(metadata);
            return;
          }
          log.warn(`call refused: ${method.path} without a verified client certificate from ${call.getPeer()}`);
          call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: 'a trusted client certificate is required' });
        },
      });
    },
  });
}

/** The verified edge behind a call of any kind (unary or stream) of a control-plane service. */
export function peerIdentityOf(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext' | 'getPeer'>): PeerIdentity {
  const cert = call.getAuthContext()?.sslPeerCertificate;
  if (!hasCertificate(cert)) throw new ControlError(grpc.status.UNAUTHENTICATED, 'a trusted client certificate is required');
  return { commonName: commonName(cert.subject), fingerprint256: cert.fingerprint256, address: call.getPeer() };
}

/** The call's text metadata as a plain record (binary "-bin" entries are left out). */
function textHeaders(md: grpc.Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.getMap())) if (typeof v === 'string') out[k] = v;
  return out;
}

export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const log = (opts.logger ?? silentLogger).child({ component: 'control' });
  const grpcServer = new grpc.Server({
    interceptors: [requireVerifiedPeer(log)],
    'grpc.max_receive_message_length': MAX_CONTROL_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_CONTROL_MESSAGE_BYTES,
    'grpc.max_concurrent_streams': 64,
    // Long-lived streams (policy, telemetry): the server pings too, so a stream whose edge vanished
    // with its carrier is closed within ~30 s instead of lingering until TCP gives up.
    'grpc.keepalive_time_ms': 20_000,
    'grpc.keepalive_timeout_ms': 10_000,
  });

  const health = new HealthImplementation({
    '': 'SERVING', [SESSION_SERVICE]: 'SERVING', ...Object.fromEntries((opts.services ?? []).map((s) => [s.name, 'SERVING'])),
  });
  health.addToServer(grpcServer);

  async function hello(call: grpc.ServerUnaryCall<unknown, unknown>): Promise<HelloReply> {
    const peer = peerIdentityOf(call);
    const req = validateHelloRequest(call.request);
    if (!req.ok) {
      log.warn({ peer: peer.address, cn: peer.commonName }, `hello refused: invalid HelloRequest (${req.reason})`);
      throw new ControlError(grpc.status.INVALID_ARGUMENT, `invalid HelloRequest: ${req.reason}`);
    }
    if (req.value.protocolVersion !== PROTOCOL_VERSION) {
      throw new ControlError(grpc.status.FAILED_PRECONDITION,
        `unsupported protocol_version ${req.value.protocolVersion}; this cloud speaks ${PROTOCOL_VERSION}`);
    }
    const produced = await opts.onHello(req.value, peer, textHeaders(call.metadata));
    const reply = validateHelloReply(produced);
    if (!reply.ok || !req.value.ciphers.includes(reply.value.cipher)) {
      // A bug on our side: say so in our log, do not hand the edge half a session.
      log.error({ edgeId: req.value.edgeId, reason: reply.ok ? `cipher ${reply.value.cipher} was not offered` : reply.reason },
        'onHello returned an invalid HelloReply');
      throw new ControlError(grpc.status.INTERNAL, 'the cloud could not build a valid session');
    }
    log.info({ edgeId: req.value.edgeId, cn: peer.commonName, sessionId: reply.value.sessionId, peer: peer.address },
      'edge hello accepted');
    return reply.value;
  }

  const helloHandler: grpc.handleUnaryCall<unknown, HelloReply> = (call, callback) => {
    hello(call).then(
      (reply) => callback(null, reply),
      (err: unknown) => {
        if (err instanceof ControlError) {
          log.debug({ code: statusName(err.code), details: err.details, peer: call.getPeer() }, 'hello refused');
          callback({ code: err.code, details: err.details });
        } else {
          log.error({ err, peer: call.getPeer() }, 'hello handler failed');
          callback({ code: grpc.status.INTERNAL, details: 'internal error' });
        }
      },
    );
  };
  grpcServer.addService(sessionServiceDefinition(), { Hello: helloHandler });
  for (const s of opts.services ?? []) grpcServer.addService(s.definition, s.implementation);
  addReflection(grpcServer, CONTROL_PROTO_FILES, [SESSION_SERVICE, ...(opts.services ?? []).map((s) => s.name)]);

  const listener = await listenMtls({ listen: opts.listen, tls: opts.tls, log, grpcServer, peerKind: 'edge', what: 'control plane' });
  return { port: listener.port, close: () => listener.close() };
}

export interface MtlsListenerOptions {
  /** "host:port"; port 0 picks a free port. */
  listen: string;
  tls: TlsFiles;
  log: Logger;
  /** The gRPC server whose services are reached through this listener. */
  grpcServer: grpc.Server;
  /** Who is expected to connect, for log lines ("edge", "operator"). */
  peerKind: string;
  /** What listens, for log lines ("control plane", "admin API"). */
  what: string;
}

export interface MtlsListener {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `grpcServer` on a TLS listener that demands a client certificate chaining to `tls.ca`
 * (see the top of this file for why TLS is terminated here). Shared by the control plane and
 * the admin API.
 */
export async function listenMtls(o: MtlsListenerOptions): Promise<MtlsListener> {
  const { log, grpcServer } = o;
  const { host, port } = parseHostPort(o.listen);
  const { ca, cert, key } = await readTlsFiles(o.tls);
  // TLS is already terminated when grpc-js sees the socket: it gets "insecure" credentials, and
  // still reports the verified TLS peer through call.getAuthContext() (the injected socket is
  // the TLSSocket itself).
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const sockets = new Set<tls.TLSSocket>();

  const tlsServer = tls.createServer({
    ca, cert, key,
    requestCert: true,
    // Verification result is checked in 'secureConnection' below, where we can log it;
    // node would otherwise drop the socket silently. Every unverified socket is destroyed there.
    rejectUnauthorized: false,
    ALPNProtocols: ['h2'],
    minVersion: 'TLSv1.2',
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
  });

  tlsServer.on('secureConnection', (socket: tls.TLSSocket) => {
    const from = remote(socket);
    if (!socket.authorized) {
      const peerCert = socket.getPeerCertificate();
      const reason = clean(String(socket.authorizationError ?? 'unknown'));
      if (hasCertificate(peerCert)) {
        log.warn({ peer: from, cn: commonName(peerCert.subject), issuer: distinguishedName(peerCert.issuer), reason },
          `${o.peerKind} refused: client certificate not trusted (CN=${commonName(peerCert.subject)}, ` +
          `issuer=${distinguishedName(peerCert.issuer)}, reason=${reason}) from ${from}`);
      } else {
        log.warn({ peer: from, reason }, `${o.peerKind} refused: no client certificate (reason=${reason}) from ${from}`);
      }
      socket.destroy();
      return;
    }
    if (socket.alpnProtocol !== 'h2') {
      log.warn({ peer: from }, `connection refused: client did not negotiate HTTP/2 (ALPN h2) from ${from}`);
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // Errors on an established connection (peer reset...) are handled by grpc-js's session;
    // this listener only keeps an unhandled 'error' from crashing the process.
    socket.on('error', (err) => log.debug({ peer: from, err: err.message }, `${o.what} connection error`));
    injector.injectConnection(socket);
  });

  // node forgets a socket's address once it is reset; reading it on accept caches it, so that a
  // failed handshake below can still say who it was.
  tlsServer.on('connection', (raw: Socket) => void raw.remoteAddress);
  tlsServer.on('tlsClientError', (err: Error & { code?: string }, socket: tls.TLSSocket) => {
    // Handshake never completed: the client refused our certificate, spoke no TLS, timed out...
    // (_parent is the accepted TCP socket: undocumented, hence only a fallback for the address.)
    const from = remote(socket.remoteAddress ? socket : ((socket as { _parent?: Socket })._parent ?? socket));
    log.warn({ peer: from, err: err.code ?? err.message }, `${o.what} TLS handshake failed (${clean(err.code ?? err.message)}) from ${from}`);
  });

  await new Promise<void>((resolve, reject) => {
    tlsServer.once('error', reject);
    tlsServer.listen(port, host, () => {
      tlsServer.off('error', reject);
      resolve();
    });
  });
  tlsServer.on('error', (err) => log.error({ err }, `${o.what} listener error`));
  const address = tlsServer.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  log.info({ listen: `${host.includes(':') ? `[${host}]` : host}:${boundPort}` }, `${o.what} listening (mTLS)`);

  let closing: Promise<void> | undefined;
  return {
    port: boundPort,
    close(): Promise<void> {
      closing ??= (async () => {
        const listenerClosed = new Promise<void>((resolve) => tlsServer.close(() => resolve()));
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            grpcServer.forceShutdown();
            resolve();
          }, SHUTDOWN_GRACE_MS);
          timer.unref();
          grpcServer.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        for (const s of sockets) s.destroy();
        await listenerClosed;
      })();
      return closing;
    },
  };
}
