// Loads proto/braid/v1/policy.proto (braid.v1.PolicyService) the same way proto.ts loads the
// session service, and gives the wire messages TypeScript shapes.
import { join } from 'node:path';
import { loadSync, type MethodDefinition, type PackageDefinition, type ServiceDefinition } from '@grpc/proto-loader';
import { PROTO_LOADER_OPTIONS, protoDir } from './proto.js';

export const POLICY_SERVICE = 'braid.v1.PolicyService';

export type PolicyResultName = 'POLICY_RESULT_UNSPECIFIED' | 'POLICY_RESULT_RUNNING' | 'POLICY_RESULT_APPLIED' | 'POLICY_RESULT_REJECTED';

/** braid.v1.PolicyDocument */
export interface PolicyDocumentMsg {
  version: number;
  policyJson: string;
  sha256: string;
  sources: string[];
  issuedUnixMs: number;
}

/** braid.v1.PolicyUpdate (proto-loader with oneofs: `kind` names the field set). */
export interface PolicyUpdateMsg {
  policy?: PolicyDocumentMsg | null;
  heartbeat?: { version: number } | null;
  heartbeatIntervalMs: number;
  kind?: 'policy' | 'heartbeat';
}

/** braid.v1.PolicyAck */
export interface PolicyAckMsg {
  version: number;
  result: PolicyResultName;
  reason: string;
  sha256: string;
}

let cached: PackageDefinition | undefined;

export function policyServiceDefinition(): ServiceDefinition {
  if (!cached) {
    const dir = protoDir();
    cached = loadSync(join(dir, 'braid/v1/policy.proto'), { ...PROTO_LOADER_OPTIONS, includeDirs: [dir] });
  }
  const def = cached[POLICY_SERVICE];
  if (!def || !('WatchPolicy' in def)) throw new Error(`${POLICY_SERVICE} missing from policy.proto`);
  return def as ServiceDefinition;
}

export function watchPolicyMethod(): MethodDefinition<object, object, unknown, unknown> {
  const m = policyServiceDefinition()['WatchPolicy'];
  if (!m) throw new Error(`${POLICY_SERVICE}.WatchPolicy missing from policy.proto`);
  return m;
}
