// Per-carrier path policy (issue 8's tiers, caps and cut-offs, applied by the engine):
//
//   tier primary    carries traffic whenever it is up (the default for a carrier not named)
//   tier secondary  overflow: a packet goes to a secondary path only when no primary path can
//                   take it now (every up primary is at its congestion limit, or none is up)
//   tier backup     carries no data while any primary or secondary path is up; keepalive
//                   probes still go, so it is known to work when it is needed
//   tier never      carries no data at all (probes only, so it can be promoted without delay)
//   capBytes        data cap per billing period (wire bytes sent plus received on the carrier);
//                   a carrier at its cap is treated as `never` until the period rolls over
//   latencyCutoffMs a path whose smoothed delay exceeds it carries no interactive or real-time
//                   traffic, as long as some path within the cut-off is up (otherwise the
//                   class goes on the allowed paths anyway: late is better than dropped)
//
// The peer must obey the same restrictions for the other direction, and it does not know the
// edge's policy or counters: each side advertises its effective tier of a path in two flag
// bits of every packet it sends on that path (wire/header: Flags.TierMask), and each side
// applies the stricter of its own and the advertised tier. A cap reached on the edge
// therefore also stops the cloud's downlink on that carrier within one packet's flight.
import { z } from 'zod';

export const CARRIER_TIERS = ['primary', 'secondary', 'backup', 'never'] as const;
export type CarrierTier = (typeof CARRIER_TIERS)[number];

/** Rank of a tier (also its two-bit wire code): higher is more restricted. */
export const TIER_RANK: Record<CarrierTier, number> = { primary: 0, secondary: 1, backup: 2, never: 3 };

export interface CarrierPolicy {
  tier?: CarrierTier;
  /** Data cap per billing period, bytes (sent + received wire bytes on the carrier). */
  capBytes?: number;
  /** Day of the month (1-28, UTC) the billing period starts; default 1. */
  billingDay?: number;
  /** Paths slower than this (smoothed delay, ms) carry no interactive or real-time traffic. */
  latencyCutoffMs?: number;
}

/** Policy by carrier name. Carriers not named are primary, uncapped, without a cut-off. */
export type PathPolicy = Readonly<Record<string, CarrierPolicy>>;

export const carrierPolicySchema = z.strictObject({
  tier: z.enum(CARRIER_TIERS).optional(),
  capBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  billingDay: z.number().int().min(1).max(28).optional(),
  latencyCutoffMs: z.number().min(1).max(60_000).optional(),
});

const CARRIER_NAME = /^[a-z0-9][a-z0-9\-_.]{0,31}$/;

export const pathPolicySchema = z.record(z.string(), carrierPolicySchema).superRefine((policy, ctx) => {
  for (const name of Object.keys(policy)) {
    if (!CARRIER_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: `expected a carrier name matching [a-z0-9][a-z0-9-_.]{0,31}, got ${JSON.stringify(name)}` });
  }
});

/** Check a policy; throws one Error listing every problem (nothing is applied from a bad one). */
export function validatePathPolicy(input: unknown): PathPolicy {
  const r = pathPolicySchema.safeParse(input);
  if (r.success) return r.data;
  const why = r.error.issues.map((i) => `${i.path.map(String).join('.') || '(policy)'}: ${i.message}`).join('; ');
  throw new Error(`invalid path policy: ${why}`);
}

/** What the selection needs to know of one path. */
export interface PolicyPathInfo {
  id: number;
  /** Up, not suspect, has a transport. */
  usable: boolean;
  /** The stricter of the local tier (cap included) and the tier the peer advertises. */
  rank: number;
  srttUs: number;
  cutoffUs: number;
}

export type PolicyClass = 'bulk' | 'interactive' | 'realtime';

/**
 * The paths allowed to carry one packet of class `cls`, among `room` (the usable paths that
 * can take it now), given every path's state in `all`. Returns `room` itself when the policy
 * restricts nothing (the common case costs no allocation).
 */
export function allowedPaths<T extends { id: number }>(room: readonly T[], all: readonly PolicyPathInfo[], cls: PolicyClass): readonly T[] {
  let restricted = false;
  for (const p of all) if (p.rank !== 0 || (cls !== 'bulk' && p.cutoffUs > 0)) restricted = true;
  if (!restricted) return room;
  const info = new Map(all.map((p) => [p.id, p]));
  const upperUp = all.some((p) => p.usable && p.rank <= 1);
  // Is some path that may carry data at all within the cut-off? (Else the cut-off is waived.)
  const cutoffOk = all.some((p) => p.usable && p.rank <= (upperUp ? 1 : 2) && withinCutoff(p));
  const useCutoff = cls !== 'bulk' && cutoffOk;
  const eligible = room.filter((r) => {
    const p = info.get(r.id);
    if (!p || p.rank === 3) return false;
    if (p.rank === 2 && upperUp) return false;
    return !useCutoff || withinCutoff(p);
  });
  // Secondary paths take a packet only when no primary path can.
  if (eligible.some((r) => info.get(r.id)?.rank === 0)) return eligible.filter((r) => info.get(r.id)?.rank === 0);
  return eligible;
}

function withinCutoff(p: PolicyPathInfo): boolean {
  return p.cutoffUs <= 0 || p.srttUs <= p.cutoffUs;
}
