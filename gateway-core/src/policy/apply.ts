// From a validated policy to the engine's knobs, and onto a running session, all or nothing:
// compilePolicy() builds every scheduler, rule and carrier entry first and throws if anything
// cannot be built; only then does applyToSession() swap them in (two assignments between
// packets, nothing that can fail), so a session never runs half of a policy. Queued packets
// and open flows are kept: traffic is not interrupted, it is scheduled differently from the
// next packet on.
import { ipv4ToNumber, parseCidr, prefixMask } from '../config/net.js';
import type { ClassRule } from '../schedule/classify.js';
import { DEFAULT_CLASS_RULES } from '../schedule/classify.js';
import { createScheduler, type Scheduler } from '../schedule/scheduler.js';
import { UtilityScheduler } from '../schedule/utility.js';
import { validatePathPolicy, type PathPolicy } from '../session/path-policy.js';
import type { SchedulePolicy, Session } from '../session/session.js';
import type { Policy } from './model.js';

export interface CompiledPolicy {
  schedule: SchedulePolicy;
  /** By carrier name, for Session.setPathPolicy (session/path-policy.ts). */
  paths: PathPolicy;
}

function portRange(p: number | string): [number, number] {
  if (typeof p === 'number') return [p, p];
  const [lo, hi] = p.split('-').map(Number);
  return [lo as number, hi as number];
}

/**
 * The engine's form of a policy. `carriers` are the names of the gateway's carriers (the global
 * latency cut-off applies to those the policy does not name). Throws when something cannot be
 * built (e.g. an algorithm that is not registered in this build).
 */
export function compilePolicy(p: Policy, carriers: readonly string[]): CompiledPolicy {
  const algo = (name: string): Scheduler => (name === 'utility' ? new UtilityScheduler({ alpha: p.schedule.alpha, beta: p.schedule.beta }) : createScheduler(name));
  const a = p.classes.algorithms;
  const rules: ClassRule[] = p.classes.rules.map((r) => ({
    class: r.class,
    ...(r.proto !== undefined ? { proto: r.proto } : {}),
    ...(r.ports ? { ports: r.ports.map(portRange) } : {}),
    ...(r.dscp ? { dscp: r.dscp } : {}),
    ...(r.destinations ? { destinations: r.destinations.map((c) => { const x = parseCidr(c); return { network: x.network, mask: prefixMask(x.prefix) }; }) } : {}),
  }));
  const privileged = p.users.filter((u) => u.privileged).sort((x, y) => y.priority - x.priority).map((u) => String(ipv4ToNumber(u.address)));
  const services = Object.fromEntries(Object.entries(p.lowLatency.services).map(([k, s]) => [k, { types: s.linkTypes, maxDelayUs: s.maxDelayMs * 1000 }]));
  const names = new Set([...carriers, ...Object.keys(p.carriers)]);
  const paths: Record<string, PathPolicy[string]> = {};
  for (const n of names) {
    const c = p.carriers[n];
    const cutoff = c?.latencyCutoffMs ?? p.latency.cutoffMs;
    const entry = {
      ...(c?.tier ? { tier: c.tier } : {}),
      ...(c?.dataCap ? { capBytes: c.dataCap.bytes, billingDay: c.dataCap.billingDay } : {}),
      ...(cutoff !== undefined ? { latencyCutoffMs: cutoff } : {}),
    };
    if (Object.keys(entry).length > 0) paths[n] = entry;
  }
  return {
    schedule: {
      scheduler: algo(a.bulk),
      schedulers: { interactive: algo(a.interactive), realtime: algo(a.realtime) },
      retransmitScheduler: algo(a.retransmit),
      retransmitF: p.schedule.retransmitF,
      pinBytes: p.schedule.pinBytes,
      // Policy rules first, then the built-in ones (DSCP EF, voice ports, DNS/SSH...).
      classRules: [...rules, ...DEFAULT_CLASS_RULES],
      privilegedUsers: privileged,
      // S2-4: priority 0-7 is a share of the stage-1 round robin, 1-8 packets per turn.
      userWeights: p.users.filter((u) => u.priority > 0).map((u) => [String(ipv4ToNumber(u.address)), u.priority + 1] as const),
      preferences: {
        preferredTypes: p.lowLatency.preferredLinkTypes,
        ...(p.lowLatency.preferredMaxDelayMs !== undefined ? { preferredMaxDelayUs: p.lowLatency.preferredMaxDelayMs * 1000 } : {}),
        services,
      },
    },
    paths: validatePathPolicy(paths),
  };
}

/** Puts a compiled policy in force on a session (nothing here throws: see compilePolicy). */
export function applyToSession(session: Pick<Session, 'setSchedulePolicy' | 'setPathPolicy'>, c: CompiledPolicy): void {
  session.setSchedulePolicy(c.schedule);
  session.setPathPolicy(c.paths);
}
