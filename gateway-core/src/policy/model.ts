// The Braid policy document: how an edge schedules (S2), which carriers it may use and how much
// (tiers, data caps, latency cut-offs), and what the redundant low-latency class prefers (S4).
// One schema for every way a policy arrives (a file on the cloud, the admin API, the cloud ->
// edge stream), so "valid" means the same everywhere. Every refusal names the field, e.g.
// "carriers.lte-a.tier: expected one of primary|secondary|backup|never, got \"gold\"".
import { z } from 'zod';
import { formatPath } from '../config/errors.js';
import { expecting, intIn, ipv4Cidr, listOf, numIn, oneOf, stringWhere } from '../config/fields.js';
import { schedulerNames } from '../schedule/scheduler.js';
import { CARRIER_TIERS } from '../session/path-policy.js';
// The algorithms a policy may name must be registered before the first validation.
import '../schedule/rate-weighted.js';
import '../schedule/utility.js';

export const TRAFFIC_CLASSES = ['bulk', 'interactive', 'realtime'] as const;

/** Upper bounds: a policy is small; anything larger is a mistake or an attack. */
export const POLICY_LIMITS = { users: 1024, rules: 256, carriers: 64, services: 64, linkTypes: 16, jsonBytes: 256 * 1024 } as const;

const NAME_RE = /^[A-Za-z0-9._:-]{1,64}$/;
const name = (what: string) => stringWhere(`${what} (1-64 chars of A-Z a-z 0-9 . _ : -)`, (s) => NAME_RE.test(s));
/** Carrier names as the edge's config and the engine's path policy spell them. */
const CARRIER_RE = /^[a-z0-9][a-z0-9\-_.]{0,31}$/;
const ipv4 = stringWhere('an IPv4 address such as 10.0.0.5', (s) => /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(s));
const algorithm = z.string({ error: expecting('the name of a registered scheduling algorithm') })
  .superRefine((s, ctx) => {
    if (typeof s === 'string' && !schedulerNames().includes(s)) {
      ctx.addIssue({ code: 'custom', input: s, message: `unknown algorithm "${s}" (known: ${schedulerNames().join(', ')})` });
    }
  });

/** A port "443" or a range "10000-20000". */
const portRange = z.union([intIn(1, 65535, 'a port 1-65535'), stringWhere('a port or a range such as "10000-20000"', (s) => {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(s);
  return !!m && Number(m[1]) >= 1 && Number(m[1]) <= Number(m[2]) && Number(m[2]) <= 65535;
})], { error: expecting('a port 1-65535 or a range such as "10000-20000"') });

/** Only the record's own type error is worded here; a bad key keeps its key schema's message. */
const mappingOf = (what: string): z.core.$ZodErrorMap => (iss) => (iss.code === 'invalid_type' ? expecting(`a mapping of ${what}`)(iss) : undefined);

const strict = <S extends z.core.$ZodLooseShape>(shape: S) =>
  z.strictObject(shape, { error: (iss) => (iss.code === 'invalid_type' ? expecting('a mapping of keys to values')(iss) : undefined) });

const userSchema = strict({
  /** Client address inside the edge's LAN (the stage 1 user, S2-4). */
  address: ipv4,
  /** 0-7: privileged users go first in descending priority; the others get priority + 1 packets per round-robin turn (S2-4). */
  priority: intIn(0, 7).default(0),
  /** S2-6: while this user has data, everyone else waits. */
  privileged: z.boolean({ error: expecting('true or false') }).default(false),
});

const classRuleSchema = strict({
  class: oneOf(TRAFFIC_CLASSES),
  proto: z.union([oneOf(['tcp', 'udp']), intIn(0, 255)], { error: expecting('tcp, udp or an IP protocol number') }).optional(),
  /** Destination or source port (either end matches). */
  ports: listOf(portRange, 'a list of ports or port ranges').max(64).optional(),
  dscp: listOf(intIn(0, 63, 'a DSCP value 0-63'), 'a list of DSCP values').max(64).optional(),
  destinations: listOf(ipv4Cidr(), 'a list of IPv4 CIDRs').max(64).optional(),
}).refine((r) => r.proto !== undefined || r.ports !== undefined || r.dscp !== undefined || r.destinations !== undefined, {
  message: 'a rule needs at least one of proto, ports, dscp, destinations (a rule matching everything would hide all others)',
});

const carrierSchema = strict({
  tier: oneOf(CARRIER_TIERS).default('primary'),
  /**
   * Data cap: wire bytes sent plus received on the carrier per billing period. Periods are
   * calendar months starting on `billingDay` (UTC), as carriers bill; the engine counts them in
   * a state file that survives restarts (session/cap-usage.ts).
   */
  dataCap: strict({
    bytes: intIn(1, Number.MAX_SAFE_INTEGER, 'a positive whole number of bytes'),
    billingDay: intIn(1, 28, 'a day of the month 1-28').default(1),
  }).optional(),
  /** Latency cut-off: above this smoothed delay the carrier carries no interactive or real-time traffic. */
  latencyCutoffMs: numIn(1, 60_000).optional(),
});

const serviceSchema = strict({
  linkTypes: listOf(name('a link type'), 'a list of link types').min(1).max(POLICY_LIMITS.linkTypes),
  maxDelayMs: numIn(0.1, 60_000),
});

/** The full policy: every field has a default, so `{}` is the built-in behaviour. */
export const policySchema = strict({
  users: listOf(userSchema, 'a list of users').max(POLICY_LIMITS.users).default([]),
  classes: strict({
    /** Tried in order before the built-in rules (DSCP EF, voice ports, DNS/SSH...). */
    rules: listOf(classRuleSchema, 'a list of classification rules').max(POLICY_LIMITS.rules).default([]),
    /** S2-11: the path algorithm per class, by registry name. */
    algorithms: strict({
      bulk: algorithm.default('rate-weighted'),
      interactive: algorithm.default('utility'),
      realtime: algorithm.default('utility'),
      retransmit: algorithm.default('utility'),
    }).default({ bulk: 'rate-weighted', interactive: 'utility', realtime: 'utility', retransmit: 'utility' }),
  }).default({ rules: [], algorithms: { bulk: 'rate-weighted', interactive: 'utility', realtime: 'utility', retransmit: 'utility' } }),
  schedule: strict({
    /** S2-8 f_i = 1/RTT_i + alpha * BW_i */
    alpha: numIn(0, 100).default(0.02),
    /** S2-8 penalty per extra path chosen. */
    beta: numIn(0, 100).default(0.1),
    /** S2-8 importance F of a cross-path retransmission (ordinary packets have F = 0). */
    retransmitF: numIn(0, 1e9).default(1000),
    /** S2-7 first-bytes pinning threshold. */
    pinBytes: intIn(0, 1 << 30).default(330 * 1024),
  }).default({ alpha: 0.02, beta: 0.1, retransmitF: 1000, pinBytes: 330 * 1024 }),
  lowLatency: strict({
    /** S4-3 user-preferred link types, ranked ahead of others while under preferredMaxDelayMs. */
    preferredLinkTypes: listOf(name('a link type'), 'a list of link types').max(POLICY_LIMITS.linkTypes).default([]),
    preferredMaxDelayMs: numIn(0.1, 60_000).optional(),
    /** S4-3 service -> link types, e.g. video: { linkTypes: [wlan24, wlan5], maxDelayMs: 30 }. */
    services: z.record(name('a service name'), serviceSchema, { error: mappingOf('service names') }).default({}),
  }).default({ preferredLinkTypes: [], services: {} }),
  /** Per carrier (by the edge's carrier name). Carriers not listed are primary, uncapped. */
  carriers: z.record(stringWhere('a carrier name (1-32 chars of a-z 0-9 - _ ., starting with a letter or digit)', (s) => CARRIER_RE.test(s)), carrierSchema, { error: mappingOf('carrier names') }).default({}),
  latency: strict({
    /** Default latency cut-off for carriers without their own latencyCutoffMs. */
    cutoffMs: numIn(1, 60_000).optional(),
  }).default({}),
}).superRefine((p, ctx) => {
  if (Object.keys(p.carriers).length > POLICY_LIMITS.carriers) ctx.addIssue({ code: 'custom', path: ['carriers'], message: `at most ${POLICY_LIMITS.carriers} carriers` });
  if (Object.keys(p.lowLatency.services).length > POLICY_LIMITS.services) ctx.addIssue({ code: 'custom', path: ['lowLatency', 'services'], message: `at most ${POLICY_LIMITS.services} services` });
  const seen = new Set<string>();
  p.users.forEach((u, i) => {
    if (seen.has(u.address)) ctx.addIssue({ code: 'custom', path: ['users', i, 'address'], message: `user ${u.address} is listed twice` });
    seen.add(u.address);
  });
  const tiers = Object.values(p.carriers).map((c) => c.tier);
  if (tiers.length > 0 && tiers.every((t) => t === 'never')) {
    ctx.addIssue({ code: 'custom', path: ['carriers'], message: 'every listed carrier is tier "never": the edge would have no carrier at all' });
  }
});

export type Policy = z.output<typeof policySchema>;
/** A policy as written (defaults not yet filled in). */
export type PolicyInput = z.input<typeof policySchema>;
export type PolicyCarrier = Policy['carriers'][string];
export type PolicyClassRule = Policy['classes']['rules'][number];

/** Partial policy from cloud-side intelligence or a per-edge override; merged over the global policy (merge.ts). */
export type PolicyOverlay = DeepPartial<PolicyInput>;
export type DeepPartial<T> = T extends readonly (infer _U)[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

export interface PolicyProblem {
  /** Dotted path, e.g. "carriers.lte-a.dataCap.bytes"; "" for the document as a whole. */
  path: string;
  message: string;
}

export class PolicyValidationError extends Error {
  constructor(readonly problems: PolicyProblem[], readonly source = 'policy') {
    const shown = problems.slice(0, 8).map((p) => (p.path ? `${p.path}: ${p.message}` : p.message));
    if (problems.length > 8) shown.push(`... and ${problems.length - 8} more`);
    super(`invalid ${source}: ${shown.join('; ')}`);
    this.name = 'PolicyValidationError';
  }
}

function problemsOf(issues: readonly z.core.$ZodIssue[]): PolicyProblem[] {
  return issues.flatMap((iss) => (iss.code === 'unrecognized_keys'
    ? iss.keys.map((k) => ({ path: formatPath([...iss.path, k]), message: 'unknown key' }))
    // A bad mapping key: zod nests the key schema's own (worded) issue.
    : iss.code === 'invalid_key' ? [{ path: formatPath(iss.path), message: iss.issues[0]?.message ?? iss.message }]
    : [{ path: formatPath(iss.path), message: iss.message }]));
}

/** A complete, valid policy from untrusted input, or PolicyValidationError naming every bad field. */
export function parsePolicy(input: unknown, source = 'policy'): Policy {
  const r = policySchema.safeParse(input ?? {});
  if (!r.success) throw new PolicyValidationError(problemsOf(r.error.issues), source);
  return r.data;
}

/** Parse JSON text (the wire and admin form), with a size bound. */
export function parsePolicyJson(text: string, source = 'policy'): Policy {
  if (Buffer.byteLength(text) > POLICY_LIMITS.jsonBytes) throw new PolicyValidationError([{ path: '', message: `larger than ${POLICY_LIMITS.jsonBytes} bytes` }], source);
  let doc: unknown;
  try {
    doc = text.trim() === '' ? {} : JSON.parse(text);
  } catch (e) {
    throw new PolicyValidationError([{ path: '', message: `not JSON: ${(e as Error).message}` }], source);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new PolicyValidationError([{ path: '', message: 'expected a JSON object' }], source);
  return parsePolicy(doc, source);
}

/** JSON with keys in a stable order, so equal policies have equal text (and hash). */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The built-in policy (what an edge runs before the cloud says anything). */
export function defaultPolicy(): Policy {
  return parsePolicy({});
}
