// Loads proto/braid/v1/session.proto (package @braid/proto) with @grpc/proto-loader. The
// directory is found through module resolution, so it works from src/ (tsx), from dist/ and
// from an installed package alike.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { loadSync, type MethodDefinition, type Options, type PackageDefinition, type ServiceDefinition } from '@grpc/proto-loader';

/** Fully qualified name of the session service, also its name in grpc.health.v1. */
export const SESSION_SERVICE = 'braid.v1.SessionService';
/** Data-plane protocol version this code speaks (HelloRequest.protocol_version). */
export const PROTOCOL_VERSION = 1;

/**
 * proto-loader options used everywhere: camelCase field names (they match the TS interfaces in
 * types.ts), numbers for 64-bit integers, Buffers for bytes, and every field present with its
 * default so that validation sees a complete object.
 */
export const PROTO_LOADER_OPTIONS: Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

/** Directory holding braid/v1/*.proto. */
export function protoDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('@braid/proto/package.json'));
}

const loaded = new Map<string, PackageDefinition>();

/** proto/braid/v1/<file>, loaded once per process with PROTO_LOADER_OPTIONS. */
export function loadBraidProto(file: string): PackageDefinition {
  let def = loaded.get(file);
  if (!def) {
    const dir = protoDir();
    def = loadSync(join(dir, 'braid/v1', file), { ...PROTO_LOADER_OPTIONS, includeDirs: [dir] });
    loaded.set(file, def);
  }
  return def;
}

/**
 * One service of a braid.v1 proto file, checked to have `method` so that a stale or mismatched
 * .proto fails at start with an error naming both, not at the first call.
 */
export function braidService(file: string, service: string, method: string): ServiceDefinition {
  const def = loadBraidProto(file)[service];
  if (!def || !(method in def)) throw new Error(`${service}.${method} missing from ${file}`);
  return def as ServiceDefinition;
}

/** One method of a braid.v1 service. Decoded messages are `unknown` until validated. */
export function braidMethod(file: string, service: string, method: string): MethodDefinition<object, object, unknown, unknown> {
  return braidService(file, service, method)[method] as MethodDefinition<object, object, unknown, unknown>;
}

/** The proto files of the services on the control-plane listener (server reflection lists them). */
export const CONTROL_PROTO_FILES = ['session.proto', 'policy.proto', 'telemetry.proto', 'rendezvous.proto', 'pop.proto'] as const;

/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha) for the given proto files, limited to
 * the services the server really serves, so that grpcurl and similar tools can list and call
 * them. Added to a server behind the same mTLS checks as every other service on it.
 */
export function addReflection(server: Pick<grpc.Server, 'addService'>, files: readonly string[], services: readonly string[]): void {
  const merged: PackageDefinition = {};
  for (const f of files) Object.assign(merged, loadBraidProto(f));
  new ReflectionService(merged, { services: [...services] }).addToServer(server);
}

export function loadControlProto(): PackageDefinition {
  return loadBraidProto('session.proto');
}

export function sessionServiceDefinition(): ServiceDefinition {
  return braidService('session.proto', SESSION_SERVICE, 'Hello');
}

/**
 * The Hello method. Its decoded request/reply are typed `unknown` on purpose: what comes off the
 * wire is only trusted after validate.ts has checked it.
 */
export function helloMethod(): MethodDefinition<object, object, unknown, unknown> {
  return braidMethod('session.proto', SESSION_SERVICE, 'Hello');
}
