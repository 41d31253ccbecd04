// Loads proto/braid/v1/session.proto (package @braid/proto) with @grpc/proto-loader. The
// directory is found through module resolution, so it works from src/ (tsx), from dist/ and
// from an installed package alike.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
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

let cached: PackageDefinition | undefined;

export function loadControlProto(): PackageDefinition {
  if (!cached) {
    const dir = protoDir();
    cached = loadSync(join(dir, 'braid/v1/session.proto'), { ...PROTO_LOADER_OPTIONS, includeDirs: [dir] });
  }
  return cached;
}

export function sessionServiceDefinition(): ServiceDefinition {
  const def = loadControlProto()[SESSION_SERVICE];
  if (!def || !('Hello' in def)) throw new Error(`${SESSION_SERVICE} missing from session.proto`);
  return def as ServiceDefinition;
}

/**
 * The Hello method. Its decoded request/reply are typed `unknown` on purpose: what comes off the
 * wire is only trusted after validate.ts has checked it.
 */
export function helloMethod(): MethodDefinition<object, object, unknown, unknown> {
  const m = sessionServiceDefinition()['Hello'];
  if (!m) throw new Error(`${SESSION_SERVICE}.Hello missing from session.proto`);
  return m;
}
