// The cloud's policy plane in one piece, so the gateway wires it with a few lines: the store
// (file-backed when policy.stateFile is set, so a restarted replica keeps the operator's policy,
// the per-edge overrides, the derived overlays and the version counter), the operator's policy
// file (policy.file), and the PolicyService served on the control-plane listener.
import { resolve } from 'node:path';
import type { Logger } from '../log.js';
import { readPolicyFile } from '../policy/file.js';
import { canonicalJson } from '../policy/model.js';
import { compilePolicy } from '../policy/apply.js';
import { ALL_EDGES, FilePolicyStore, type PolicyStore } from '../policy/store.js';
import type { Session } from '../session/session.js';
import { createPolicyService, type PolicyServiceHandle } from './policy-service.js';

export interface CloudPolicyConfig {
  /** The operator's policy document (YAML or JSON); '' or undefined: none. */
  file?: string | undefined;
  /** Where the store keeps its state; '' or undefined: memory only. */
  stateFile?: string | undefined;
  heartbeatMs: number;
}

export interface CloudPolicy {
  store: PolicyStore;
  service: PolicyServiceHandle;
  /**
   * The downlink of an edge's session follows that edge's effective policy too: its scheduling
   * knobs (algorithms per class, retransmit F, pinning, class rules, privileged users, S4
   * preferences), now and on every change. Not the path policy: tiers reach the cloud in-band from
   * the edge (which also counts the data caps, once, across restarts). Returns the detach function.
   */
  attachSession(edgeId: string, session: Pick<Session, 'setSchedulePolicy'>, carriers: readonly string[]): () => void;
  close(): Promise<void>;
}

/**
 * Opens the store and, with `file`, makes that document the global policy. The file wins at every
 * start (it is the operator's source of truth); `braid policy set` changes the global policy until
 * the next start, or for good when the file is not set.
 */
export async function startCloudPolicy(cfg: CloudPolicyConfig, logger?: Logger): Promise<CloudPolicy> {
  const store = await FilePolicyStore.open(cfg.stateFile ? resolve(cfg.stateFile) : undefined);
  if (cfg.file) {
    const doc = await readPolicyFile(resolve(cfg.file));
    // Unchanged since the last start: keep the version, so edges are not sent the same policy again.
    if (canonicalJson(store.global()?.policy) !== canonicalJson(doc)) {
      const stored = await store.setGlobal(doc);
      logger?.info({ file: cfg.file, revision: stored.revision }, 'global policy loaded from file');
    }
  }
  const service = createPolicyService({ store, heartbeatMs: cfg.heartbeatMs, ...(logger ? { logger } : {}) });
  const log = logger?.child({ component: 'policy' });
  const attachSession = (edgeId: string, session: Pick<Session, 'setSchedulePolicy'>, carriers: readonly string[]): (() => void) => {
    let lastHash = '';
    const apply = (): void => {
      try {
        const eff = store.effective(edgeId);
        if (eff.hash === lastHash) return;
        session.setSchedulePolicy(compilePolicy(eff.policy, carriers).schedule);
        lastHash = eff.hash;
      } catch (e) {
        // The session keeps what it runs; the edge's stream reports the same problem.
        log?.warn({ edge: edgeId, err: (e as Error).message }, 'policy not applied to the downlink');
      }
    };
    apply();
    return store.onChange((changed) => {
      if (changed === edgeId || changed === ALL_EDGES) apply();
    });
  };
  return {
    store,
    service,
    attachSession,
    async close() {
      service.close();
      await store.close();
    },
  };
}
