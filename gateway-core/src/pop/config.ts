// Edge configuration of multi-PoP selection (S2-13), composed into the edge schema.
import { host, hostPort, intIn, ipv4Cidr, listOf, numIn, section, stringWhere } from '../config/fields.js';
import { parseTarget } from './probe.js';

export const MAX_POPS = 8;

/** `pops`: the clouds this edge may use; empty: control.cloud only (one PoP). */
export const popsSchema = listOf(section({
  name: stringWhere('a name of 1-32 characters [A-Za-z0-9._-]', (s) => /^[A-Za-z0-9._-]{1,32}$/.test(s)),
  cloud: hostPort('host:port of that PoP\'s control plane', false),
  serverName: host('a TLS server name (host name or IP address)').optional(),
}), `a list of at most ${MAX_POPS} PoPs`).max(MAX_POPS).superRefine((pops, ctx) => {
  const seen = new Set<string>();
  pops.forEach((p, i) => {
    if (seen.has(p.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], input: p.name, message: `expected a PoP name no other PoP uses, got ${JSON.stringify(p.name)}` });
    seen.add(p.name);
  });
}).default([]);

/** `popSelection`: which destinations are routed by PoP, and how eagerly a choice changes. */
export const popSelectionSchema = section({
  intervalMs: intIn(200, 60000).default(1000),
  hysteresisPct: numIn(0, 100).default(10),
  hysteresisMs: numIn(0, 1000).default(2),
  destinations: listOf(section({
    prefix: ipv4Cidr(),
    probe: stringWhere('an IPv4 address and TCP port such as 198.51.100.10:443', (s) => parseTarget(s) !== undefined),
  }), 'a list of at most 64 destinations').max(64).default([]),
}).prefault({});
