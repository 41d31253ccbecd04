// Loads proto/braid/v1/policy.proto (braid.v1.PolicyService) the same way proto.ts loads the
// session service, and gives the wire messages TypeScript shapes.
import type { MethodDefinition, ServiceDefinition } from '@grpc/proto-loader';
import { braidMethod, braidService } from './proto.js';

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

export function policyServiceDefinition(): ServiceDefinition {
  return braidService('policy.proto', POLICY_SERVICE, 'WatchPolicy');
}

export function watchPolicyMethod(): MethodDefinition<object, object, unknown, unknown> {
  return braidMethod('policy.proto', POLICY_SERVICE, 'WatchPolicy');
}
