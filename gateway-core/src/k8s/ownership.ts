// Which cloud replica owns a session, and what the Hello hands out (docs/kubernetes.md,
// "Session ownership"): the session is PINNED to the replica that answered the Hello. That
// replica tells the edge its own data-plane address, so every path of the session sends to the
// same replica whatever the control-plane load balancer did. No packet is forwarded between
// replicas and no session state is shared.
//
// When the pinned replica goes away its paths fall silent, the edge declares them dead and says
// Hello again through the control Service, whose endpoints no longer include the lost replica:
// the session re-homes to a live one. rendezvousOwner() is the deterministic choice used when a
// set of replicas must agree on an owner without talking to each other (e.g. to pre-assign
// re-homing targets); highest-random-weight hashing moves only the lost replica's sessions.
import { createHash } from 'node:crypto';
import type { CloudReplica } from './endpoint-slices.js';

export interface DataEndpoint { host: string; port: number }

/**
 * The data endpoint this replica hands out in its HelloReply: its own pod address (found in the
 * replica list by pod name, else POD_IP) and the data port, unless a public host is configured
 * (then the operator has put a per-replica address in front of each pod, e.g. hostNetwork).
 */
export function pinnedDataEndpoint(
  self: { podName?: string; podIp?: string; dataPort: number; publicHost?: string; publicPort?: number },
  replicas: readonly CloudReplica[],
): DataEndpoint | undefined {
  if (self.publicHost) return { host: self.publicHost, port: self.publicPort ?? self.dataPort };
  const me = replicas.find((r) => r.name === self.podName) ?? replicas.find((r) => r.address === self.podIp);
  const host = me?.address ?? self.podIp;
  if (!host) return undefined;
  return { host, port: self.publicPort ?? me?.dataPort ?? self.dataPort };
}

/** Highest-random-weight owner of a key among the ready replicas; undefined when none is ready. */
export function rendezvousOwner(key: string | number | bigint, replicas: readonly CloudReplica[]): CloudReplica | undefined {
  let best: CloudReplica | undefined;
  let bestScore = -1n;
  for (const r of replicas) {
    if (!r.ready) continue;
    const score = createHash('sha256').update(`${r.name}\0${r.address}\0${String(key)}`).digest().readBigUInt64BE(0);
    if (score > bestScore) {
      best = r;
      bestScore = score;
    }
  }
  return best;
}
