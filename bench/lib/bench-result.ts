// The result of `npm run bench` (DESIGN.md bench contract). The zod schema is the authority;
// bench/schema/result.schema.json is generated from it (bench/schema/generate.ts) and a unit test
// keeps the two in step. Per-system figures are exactly the contract's; a figure that does not
// apply to a system, or that could not be measured, is null.
import { z } from 'zod';
import { SYSTEMS } from './scenario.js';

const percentiles = z.strictObject({ p50: z.number().min(0), p99: z.number().min(0) });

export const systemResultSchema = z.strictObject({
  goodputMbps: z.number().min(0).nullable().describe('Payload delivered to the receiving application(s), Mbit/s over the run.'),
  capacityMbps: z.number().min(0).nullable().describe('Sum over the carriers of what the links could deliver in the run, in the traffic\'s direction(s).'),
  efficiency: z.number().min(0).nullable().describe('goodputMbps / capacityMbps.'),
  latencyMs: percentiles.nullable().describe('Request/response latency (rr traffic only).'),
  maxGapMs: z.number().min(0).nullable().describe('Longest interval with zero goodput at 100 ms sampling.'),
  reorderDelayMs: percentiles.nullable().describe('Time packets waited in Braid\'s reorder buffer (braid only; null when the gateways do not export it).'),
  overheadPct: z.number().nullable().describe('Carrier bytes over payload bytes, minus one, in percent.'),
  lostMessages: z.number().int().min(0).nullable().describe('rr messages without an answer by the end of the run (rr only).'),
  cpuPct: z.number().min(0).nullable().describe('CPU of the gateway processes (edge + cloud), % of one core.'),
  rssMb: z.number().min(0).nullable().describe('Resident memory of the gateway processes (edge + cloud) at the end, MiB.'),
});
export type SystemResult = z.infer<typeof systemResultSchema>;

const systemDetails = z.strictObject({
  /** Why figures are null, when a step failed. */
  errors: z.array(z.string()),
  notes: z.array(z.string()),
  /** The traffic commands as run, with their namespaces. */
  commands: z.array(z.string()),
  /** The path the traffic took, in words. */
  path: z.string(),
  /** Seconds from building the links to the start of the traffic (the emulator's lead). */
  leadS: z.number(),
  /** Bytes delivered by each carrier during the traffic, per direction. */
  carrierBytes: z.array(z.strictObject({ name: z.string(), up: z.number(), down: z.number() })),
  /**
   * Beside reorderDelayMs, and under details because the contract's per-system figures are a
   * fixed set: optional, so results written before it existed still parse.
   */
  delaySpreadMs: percentiles.nullable().optional().describe(
    'Braid only: p50/p99 of the one-way delay spread between the paths in use, measured by the receiving gateways for each arriving data packet (gateway-core receive/delay-spread.ts), as upper bounds of the reorder-delay histogram buckets; issue 4 wants reorderDelayMs.p99 <= delaySpreadMs.p99 + 5 ms. Null when the gateways do not export it.'),
  /** Scenarios with rate steps: how fast goodput followed each step (bench/lib/step-response.ts). */
  stepResponse: z.array(z.strictObject({
    atS: z.number(),
    fromMbps: z.number(),
    toMbps: z.number(),
    reach90CapacityMs: z.number().nullable(),
    settledMbps: z.number(),
    reach90SettledMs: z.number().nullable(),
  })).optional(),
});

export const benchResultSchema = z.strictObject({
  scenario: z.string(),
  durationS: z.number().positive(),
  systems: z.partialRecord(z.enum(SYSTEMS), systemResultSchema),
  // Everything below is extra to the contract: what ran, where, and why a figure is missing.
  date: z.string(),
  command: z.string(),
  host: z.strictObject({
    cpus: z.number(), cpuModel: z.string(), kernel: z.string(), node: z.string(), loadAverageAtStart: z.array(z.number()),
  }),
  carriers: z.array(z.strictObject({ name: z.string(), meanMbps: z.strictObject({ up: z.number(), down: z.number() }) })),
  bestCarrier: z.string(),
  details: z.partialRecord(z.enum(SYSTEMS), systemDetails),
});
export type BenchResult = z.infer<typeof benchResultSchema>;
export type SystemDetails = z.infer<typeof systemDetails>;

export function resultJsonSchema(): unknown {
  return { $id: 'https://braid.invalid/bench/result.schema.json', title: 'Braid bench result', ...z.toJSONSchema(benchResultSchema) as object };
}

/** Problems of a parsed result, each naming its field; empty when it is valid. */
export function validateResult(x: unknown): string[] {
  const r = benchResultSchema.safeParse(x);
  if (r.success) return [];
  return r.error.issues.map((i) => `${i.path.map(String).join('.') || '(top level)'}: ${i.message}`);
}

export const NULL_RESULT: SystemResult = {
  goodputMbps: null, capacityMbps: null, efficiency: null, latencyMs: null, maxGapMs: null,
  reorderDelayMs: null, overheadPct: null, lostMessages: null, cpuPct: null, rssMb: null,
};
