// TypeScript shapes of the braid.v1 control-plane messages (proto/braid/v1/session.proto) as
// @grpc/proto-loader presents them with keepCase: false (camelCase), longs: Number and
// bytes: Buffer. Hand-written so that callers get real types; validate.ts checks that what
// arrives off the wire matches them before anyone else sees it.
import type { Logger } from '../log.js';

/** Paths of PEM files for one side of the mutual TLS. */
export interface TlsFiles {
  /** CA certificate(s) that the peer's certificate must chain to. */
  ca: string;
  /** Our own certificate (chain). */
  cert: string;
  /** Private key of `cert`. */
  key: string;
}

/** braid.v1.Carrier */
export interface CarrierInfo {
  name: string;
  interface: string;
  /** operator, mcc, mnc, technology, ... */
  metadata: Record<string, string>;
}

/** braid.v1.HelloRequest */
export interface HelloRequest {
  edgeId: string;
  softwareVersion: string;
  protocolVersion: number;
  ciphers: string[];
  carriers: CarrierInfo[];
}

/** braid.v1.Endpoint */
export interface Endpoint {
  host: string;
  port: number;
}

/** braid.v1.HelloReply */
export interface HelloReply {
  /** Never 0. */
  sessionId: number;
  cipher: string;
  /** 32 bytes. */
  edgeToCloudKey: Buffer;
  /** 32 bytes. */
  cloudToEdgeKey: Buffer;
  dataEndpoint: Endpoint;
  tunnelAddress: string;
  tunnelPrefixLen: number;
  tunnelMtu: number;
  keepaliveMs: number;
  /** The cloud relays TCP connections (relay/, docs/tcp-relay.md); absent from older clouds. */
  tcpRelay?: boolean;
}

/** Who is calling, from the verified client certificate and the connection. */
export interface PeerIdentity {
  /** Subject CN of the client certificate (the edge id, for certificates made by gen-dev-certs.sh). */
  commonName: string;
  /** SHA-256 fingerprint of the client certificate, "AB:CD:..." as node:tls prints it. */
  fingerprint256: string;
  /** Remote "ip:port" of the connection. */
  address: string;
}

export interface ControlServerOptions {
  /** "host:port"; port 0 picks a free port (see ControlServer.port). IPv6 as "[::1]:port". */
  listen: string;
  tls: TlsFiles;
  logger?: Logger;
  /**
   * Called for each authenticated edge hello; throw ControlError to refuse with a status and reason.
   * `headers` are the call's text metadata (e.g. W3C traceparent), lower-case keys.
   */
  onHello(req: HelloRequest, peer: PeerIdentity, headers: Record<string, string>): Promise<HelloReply>;
  /**
   * Further services served on the same mTLS listener (telemetry, policy, rendezvous...). Each is
   * reported SERVING by grpc.health.v1 under `name`; the verified-peer interceptor covers them too.
   * Handlers get the edge's identity with `peerIdentityOf(call)`.
   */
  services?: ExtraService[];
}

/** A gRPC service added to the control-plane server. */
export interface ExtraService {
  /** Fully qualified service name, e.g. "braid.v1.TelemetryService". */
  name: string;
  definition: import('@grpc/grpc-js').ServiceDefinition;
  implementation: import('@grpc/grpc-js').UntypedServiceImplementation;
}

export interface ControlServer {
  /** The port actually bound. */
  readonly port: number;
  close(): Promise<void>;
}

export interface HelloOptions {
  /** "host:port" of the cloud control plane. */
  target: string;
  tls: TlsFiles;
  /** Name to verify the server certificate against instead of the host in `target`. */
  serverName?: string;
  /** Deadline of the call in milliseconds; default 5000. */
  deadlineMs?: number;
  /** Text metadata sent with the call (e.g. W3C traceparent/tracestate). */
  headers?: Record<string, string>;
}
