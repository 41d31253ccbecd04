// Loads proto/braid/v1/telemetry.proto with the control plane's proto-loader options.
import type { MethodDefinition, ServiceDefinition } from '@grpc/proto-loader';
import { braidMethod, braidService } from '../control/proto.js';

/** Fully qualified name of the telemetry service, also its name in grpc.health.v1. */
export const TELEMETRY_SERVICE = 'braid.v1.TelemetryService';

export function telemetryServiceDefinition(): ServiceDefinition {
  return braidService('telemetry.proto', TELEMETRY_SERVICE, 'Report');
}

/** The Report method; what it decodes is `unknown` until validate.ts has checked it. */
export function reportMethod(): MethodDefinition<object, object, unknown, unknown> {
  return braidMethod('telemetry.proto', TELEMETRY_SERVICE, 'Report');
}
