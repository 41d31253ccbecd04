// The admin API's policy calls (GetPolicy / SetPolicy of braid.v1.AdminService): on the cloud
// over the PolicyStore and the PolicyService's acknowledgements; on an edge over its policy
// client (read-only: an edge's policy comes from the cloud).
import { createHash } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { canonicalJson, parsePolicyJson, PolicyValidationError, type Policy } from '../policy/model.js';
import { ALL_EDGES, type PolicyStore } from '../policy/store.js';
import type { PolicyClientStatus } from '../policy/client.js';
import { ControlError } from './errors.js';
import type { EdgePolicyState } from './policy-service.js';

export interface AdminEdgePolicyStatus {
  edgeId: string;
  connected: boolean;
  address: string;
  sentVersion: number;
  appliedVersion: number;
  rejectedVersion: number;
  rejectedReason: string;
}

export interface AdminPolicy {
  role: string;
  version: number;
  policyJson: string;
  sha256: string;
  sources: string[];
  documentJson: string;
  edges: AdminEdgePolicyStatus[];
  connected: boolean;
  appliedUnixMs: number;
  rejectedVersion: number;
  rejectedReason: string;
}

export interface AdminPolicyApi {
  get(edgeId: string): AdminPolicy;
  set(req: { policyJson: string; edgeId: string; clear: boolean }): Promise<{ version: number; sources: string[]; edgesNotified: number }>;
}

const EDGE_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

function checkEdgeId(edgeId: string): void {
  if (edgeId !== '' && !EDGE_ID_RE.test(edgeId)) throw new ControlError(status.INVALID_ARGUMENT, `edge_id "${edgeId.slice(0, 40)}" is not an edge id (1-128 chars of A-Z a-z 0-9 . _ : -)`);
}

const sha = (p: Policy): string => createHash('sha256').update(canonicalJson(p)).digest('hex');

/** The cloud's side: the store is the truth; the service knows what each edge acknowledged. */
export function cloudPolicyAdmin(store: PolicyStore, edges: () => EdgePolicyState[]): AdminPolicyApi {
  const edgeList = (): AdminEdgePolicyStatus[] => edges().map((e) => ({
    edgeId: e.edgeId, connected: e.connected, address: e.address, sentVersion: e.sentVersion, appliedVersion: e.appliedVersion,
    rejectedVersion: e.rejected?.version ?? 0, rejectedReason: e.rejected?.reason ?? '',
  }));
  return {
    get(edgeId) {
      checkEdgeId(edgeId);
      let eff;
      try {
        eff = store.effective(edgeId || ALL_EDGES);
      } catch (e) {
        throw new ControlError(status.FAILED_PRECONDITION, (e as Error).message);
      }
      const doc = edgeId ? store.edgeOverride(edgeId) : store.global();
      return {
        role: 'cloud', version: eff.version, policyJson: JSON.stringify(eff.policy), sha256: sha(eff.policy), sources: eff.sources,
        documentJson: doc ? JSON.stringify(doc.policy) : '', edges: edgeList(), connected: false, appliedUnixMs: 0, rejectedVersion: 0, rejectedReason: '',
      };
    },
    async set({ policyJson, edgeId, clear }) {
      checkEdgeId(edgeId);
      if (clear && !edgeId) throw new ControlError(status.INVALID_ARGUMENT, 'clear needs edge_id: the global policy cannot be removed (set {} for the defaults)');
      if (clear && policyJson.trim() !== '') throw new ControlError(status.INVALID_ARGUMENT, 'clear and policy_json exclude each other');
      try {
        if (clear) {
          await store.setEdgeOverride(edgeId, undefined);
        } else {
          // The text must be a policy document of its own (for an override, a partial one is fine: the store checks the merged result).
          let doc: unknown;
          try {
            doc = JSON.parse(policyJson.trim() === '' ? '{}' : policyJson);
          } catch (e) {
            throw new PolicyValidationError([{ path: '', message: `not JSON: ${(e as Error).message}` }], 'policy');
          }
          if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new PolicyValidationError([{ path: '', message: 'expected a JSON object' }], 'policy');
          if (edgeId) await store.setEdgeOverride(edgeId, doc as never);
          else {
            parsePolicyJson(policyJson, 'global policy');
            await store.setGlobal(doc);
          }
        }
      } catch (e) {
        if (e instanceof PolicyValidationError) throw new ControlError(status.INVALID_ARGUMENT, e.message);
        throw e;
      }
      const eff = store.effective(edgeId || ALL_EDGES);
      const notified = edges().filter((e) => e.connected && (edgeId === '' || e.edgeId === edgeId)).length;
      return { version: eff.version, sources: eff.sources, edgesNotified: notified };
    },
  };
}

/** An edge's side: what its policy client runs. */
export function edgePolicyAdmin(status_: () => PolicyClientStatus): AdminPolicyApi {
  return {
    get(edgeId) {
      checkEdgeId(edgeId);
      const s = status_();
      return {
        role: 'edge', version: s.version, policyJson: s.policy ? JSON.stringify(s.policy) : '', sha256: s.sha256, sources: s.sources, documentJson: '',
        edges: [], connected: s.connected, appliedUnixMs: s.appliedAtMs, rejectedVersion: s.lastRejected?.version ?? 0, rejectedReason: s.lastRejected?.reason ?? '',
      };
    },
    async set() {
      throw new ControlError(status.FAILED_PRECONDITION, "an edge's policy comes from the cloud: set it on the cloud's admin API (braid --target CLOUD policy set)");
    },
  };
}
