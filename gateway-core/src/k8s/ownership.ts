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

// ---- owner-tagged session ids (what the cloud gateway uses; docs/kubernetes.md) ---------------
//
// The replica that answers a Hello becomes the session's owner and writes a hash of its own
// address into the top OWNER_TAG_BITS of the session id it hands out. Every data-plane packet
// carries the session id in clear, so any replica that receives a packet of a session it does
// not hold knows, from the id and the replica list alone, where to forward it. The owner is
// fixed for the session's life: replicas joining or leaving never move a live session (plain
// consistent hashing over the replica list would move 1/N of them on every scale-up).

export const OWNER_TAG_BITS = 12;
const ID_BITS = 32 - OWNER_TAG_BITS;

/** The tag of a replica, from the address every discovery source agrees on (pod IP). */
export function ownerTag(address: string): number {
  return createHash('sha256').update(address).digest().readUInt16BE(0) >>> (16 - OWNER_TAG_BITS);
}

/** A session id carrying `tag`; `random` supplies the low bits. Never 0. */
export function taggedSessionId(tag: number, random: (maxExclusive: number) => number): number {
  for (;;) {
    const id = ((tag << ID_BITS) | random(1 << ID_BITS)) >>> 0;
    if (id !== 0) return id;
  }
}

/** The tag written in a session id. */
export function sessionOwnerTag(sessionId: number): number {
  return sessionId >>> ID_BITS;
}

/**
 * The replicas that may own a session: those whose tag matches (usually one; two replicas
 * whose addresses collide on the tag both get the packet, and the one without the session
 * drops it). Ready or not: a terminating replica still holds its sessions.
 */
export function sessionOwners(sessionId: number, replicas: readonly CloudReplica[], selfAddress?: string): CloudReplica[] {
  const tag = sessionOwnerTag(sessionId);
  return replicas.filter((r) => r.address !== selfAddress && ownerTag(r.address) === tag);
}
