// Loads proto/braid/v1/telemetry.proto with the control plane's proto-loader options.
import { join } from 'node:path';
import { loadSync, type MethodDefinition, type PackageDefinition, type ServiceDefinition } from '@grpc/proto-loader';
import { PROTO_LOADER_OPTIONS, protoDir } from '../control/proto.js';

/** Fully qualified name of the telemetry service, also its name in grpc.health.v1. */
export const TELEMETRY_SERVICE = 'braid.v1.TelemetryService';

let cached: PackageDefinition | undefined;

function load(): PackageDefinition {
  if (!cached) {
    const dir = protoDir();
    cached = loadSync(join(dir, 'braid/v1/telemetry.proto'), { ...PROTO_LOADER_OPTIONS, includeDirs: [dir] });
  }
  return cached;
}

export function telemetryServiceDefinition(): ServiceDefinition {
  const def = load()[TELEMETRY_SERVICE];
  if (!def || !('Report' in def)) throw new Error(`${TELEMETRY_SERVICE} missing from telemetry.proto`);
  return def as ServiceDefinition;
}

/** The Report method; what it decodes is `unknown` until validate.ts has checked it. */
export function reportMethod(): MethodDefinition<object, object, unknown, unknown> {
  const m = telemetryServiceDefinition()['Report'];
  if (!m) throw new Error(`${TELEMETRY_SERVICE}.Report missing from telemetry.proto`);
  return m;
}
