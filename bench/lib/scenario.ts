// A bench scenario (the DESIGN.md bench contract): what links, what traffic, which systems.
// Loading is strict: an unknown field, a missing or malformed trace file or an impossible value
// is a ScenarioError whose message names the field, so a typo never silently runs a different
// benchmark than the one written down.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';

export const SYSTEMS = ['braid', 'best-single', 'mptcp', 'single-path-braid', 'openvpn'] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** The harness address plan has one digit per carrier (10.2{i}.0.0/24). */
export const MAX_CARRIERS = 10;
export const MAX_DURATION_S = 600;

const outage = z.strictObject({
  atS: z.number().min(0),
  forS: z.number().positive(),
});

const rateStep = z.strictObject({
  /** Seconds after the traffic starts. */
  atS: z.number().min(0),
  rateMbps: z.number().positive().max(10_000),
});

const carrier = z.strictObject({
  /** Defaults to the model name (model carriers) or `c<index>`. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/, 'letters, digits, "_", "." or "-", at most 32').optional(),
  rateMbps: z.number().positive().max(10_000).optional(),
  /**
   * Capacity changes of a `rateMbps` carrier (both directions): from `atS` on, the carrier runs at
   * the step's rate. Extra to the DESIGN.md contract, for the S2-12 step-response figure.
   */
  rateSteps: z.array(rateStep).min(1).max(32).optional(),
  downTrace: z.string().min(1).optional(),
  upTrace: z.string().min(1).optional(),
  model: z.string().min(1).optional(),
  seed: z.number().int().min(0).max(2 ** 31 - 1).optional(),
  delayMs: z.number().min(0).max(5_000).optional(),
  lossPct: z.number().min(0).lt(100).optional(),
  outages: z.array(outage).optional(),
  /** Drop-tail queue of the emulated link, packets (emulator default when absent). */
  queuePackets: z.number().int().positive().max(100_000).optional(),
});

const tcp = z.strictObject({
  kind: z.literal('tcp'),
  direction: z.enum(['up', 'down']).default('down'),
  flows: z.number().int().min(1).max(64).default(1),
  /** The senders' TCP congestion control (iperf3 -C, e.g. "cubic"); default: the host's. */
  congestion: z.string().regex(/^[a-z0-9_]{1,16}$/, 'a kernel congestion control name, e.g. cubic or bbr').optional(),
});
const rr = z.strictObject({
  kind: z.literal('rr'),
  /** Request and response size; at least the 16-byte header of bench/lib/rr.ts. */
  sizeB: z.number().int().min(16).max(65_536).default(100),
  rateHz: z.number().positive().max(2_000).default(50),
});
const udp = z.strictObject({
  kind: z.literal('udp'),
  direction: z.enum(['up', 'down']).default('down'),
  rateMbps: z.number().positive().max(10_000),
});

const scenarioSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'letters, digits, "_", "." or "-", at most 64'),
  description: z.string().optional(),
  durationS: z.number().min(2).max(MAX_DURATION_S),
  carriers: z.array(carrier).min(1).max(MAX_CARRIERS),
  traffic: z.array(z.discriminatedUnion('kind', [tcp, rr, udp])).min(1).max(8),
  systems: z.array(z.enum(SYSTEMS)).min(1),
});

export type ScenarioInput = z.input<typeof scenarioSchema>;
export type Scenario = z.output<typeof scenarioSchema>;
export type ScenarioCarrier = Scenario['carriers'][number];
export type TrafficItem = Scenario['traffic'][number];

/** The scenario's JSON schema (for editors and readers); the zod schema above is the authority. */
export function scenarioJsonSchema(): unknown {
  return { $id: 'https://braid.invalid/bench/scenario.schema.json', title: 'Braid bench scenario', ...z.toJSONSchema(scenarioSchema, { io: 'input' }) as object };
}

export class ScenarioError extends Error {
  constructor(readonly where: string, readonly problems: string[]) {
    super(`${where}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ScenarioError';
  }
}

/** One direction of a carrier as the runner needs it: a trace (ms timestamps) or a rate. */
export interface DirectionSource {
  /** Mahimahi trace: one 1500-byte delivery opportunity per line, ms, looping at the last one. */
  trace?: number[];
  /** Where the trace came from (absolute path, or "model:<name>"). */
  traceFrom?: string;
  rateMbps?: number;
}

export interface ResolvedCarrier {
  index: number;
  name: string;
  input: ScenarioCarrier;
  /** Absent for model carriers: the emulator's model builds both directions. */
  up?: DirectionSource;
  down?: DirectionSource;
  /** Mean capacity over the scenario's duration with outages taken out, Mbit/s. */
  meanMbps: { up: number; down: number };
}

export interface ResolvedScenario extends Scenario {
  file: string;
  resolvedCarriers: ResolvedCarrier[];
}

/** Hooks the loader needs from the link emulator's synthetic models (test/emulator/models.ts). */
export interface ModelCatalog {
  names: readonly string[];
  /** Mean capacity of the model's two directions over durationS, Mbit/s. */
  meanMbps(name: string, seed: number, durationS: number): { up: number; down: number };
}

export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(top level)';
}

function zodProblems(err: z.ZodError): string[] {
  return err.issues.map((issue) => {
    const where = formatIssuePath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      return `${where}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    return `${where}: ${issue.message}`;
  });
}

/** Parses a Mahimahi trace: integer ms timestamps, non-decreasing, at least one, last > 0. */
export function parseTrace(text: string, where: string): number[] {
  const out: number[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const v = Number(line);
    if (!Number.isInteger(v) || v < 0) throw new Error(`${where} line ${i + 1}: "${line.slice(0, 40)}" is not a whole number of ms`);
    if (out.length > 0 && v < out[out.length - 1]!) throw new Error(`${where} line ${i + 1}: ${v} goes back in time`);
    out.push(v);
  }
  if (out.length === 0) throw new Error(`${where}: empty trace`);
  if (out[out.length - 1]! <= 0) throw new Error(`${where}: the last timestamp must be > 0 ms (it is the loop period)`);
  return out;
}

/** Mean rate of a looping trace: one 1500-byte packet per line over the period (last timestamp). */
export function traceMeanMbps(trace: readonly number[]): number {
  const periodMs = trace[trace.length - 1] ?? 0;
  return periodMs > 0 ? (trace.length * 1500 * 8) / (periodMs * 1000) : 0;
}

/** Time-weighted mean rate over [0, durationS) of a rate with steps (steps sorted by atS). */
export function steppedMeanMbps(rateMbps: number, steps: readonly { atS: number; rateMbps: number }[] | undefined, durationS: number): number {
  if (!steps?.length) return rateMbps;
  let area = 0;
  let at = 0;
  let rate = rateMbps;
  for (const st of steps) {
    const until = Math.min(st.atS, durationS);
    if (until > at) area += (until - at) * rate;
    at = Math.max(at, until);
    rate = st.rateMbps;
  }
  if (durationS > at) area += (durationS - at) * rate;
  return area / durationS;
}

/** Fraction of [0, durationS) covered by outages (overlaps counted once). */
export function outageFraction(outages: readonly { atS: number; forS: number }[] | undefined, durationS: number): number {
  if (!outages?.length) return 0;
  const spans = outages.map((o) => [Math.min(o.atS, durationS), Math.min(o.atS + o.forS, durationS)] as const)
    .sort((a, b) => a[0] - b[0]);
  let covered = 0;
  let end = 0;
  for (const [a, b] of spans) {
    const from = Math.max(a, end);
    if (b > from) covered += b - from;
    end = Math.max(end, b);
  }
  return covered / durationS;
}

/** The carrier the single-carrier systems use: highest mean capacity in the traffic's direction. */
export function bestCarrier(s: Pick<ResolvedScenario, 'resolvedCarriers' | 'traffic'>): ResolvedCarrier {
  const dirs = trafficDirections(s.traffic);
  let best = s.resolvedCarriers[0]!;
  const score = (c: ResolvedCarrier): number => dirs.reduce((sum, d) => sum + c.meanMbps[d], 0);
  for (const c of s.resolvedCarriers) if (score(c) > score(best)) best = c;
  return best;
}

/** Link directions the traffic loads: rr uses both (requests up, responses down). */
export function trafficDirections(traffic: readonly TrafficItem[]): ('up' | 'down')[] {
  const set = new Set<'up' | 'down'>();
  for (const t of traffic) {
    if (t.kind === 'rr') {
      set.add('up');
      set.add('down');
    } else {
      set.add(t.direction);
    }
  }
  return [...set];
}

/**
 * Validates a parsed scenario object. `file` is where it came from: relative trace paths resolve
 * against its directory. `models` is the emulator's model catalogue (absent: model carriers are
 * an error that says why).
 */
export function validateScenario(raw: unknown, file: string, models?: ModelCatalog): ResolvedScenario {
  const parsed = scenarioSchema.safeParse(raw);
  if (!parsed.success) throw new ScenarioError(file, zodProblems(parsed.error));
  const s = parsed.data;
  const problems: string[] = [];
  const baseDir = dirname(resolve(file));

  const loadTrace = (path: string, where: string): DirectionSource | undefined => {
    const abs = resolve(baseDir, path);
    if (!existsSync(abs)) {
      problems.push(`${where}: trace file not found: ${abs}`);
      return undefined;
    }
    try {
      return { trace: parseTrace(readFileSync(abs, 'utf8'), abs), traceFrom: abs };
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message}`);
      return undefined;
    }
  };

  const resolved: ResolvedCarrier[] = [];
  const names = new Set<string>();
  s.carriers.forEach((c, index) => {
    const where = `carriers[${index}]`;
    const kinds = [c.rateMbps !== undefined, c.downTrace !== undefined || c.upTrace !== undefined, c.model !== undefined]
      .filter(Boolean).length;
    if (kinds !== 1) {
      problems.push(`${where}: give exactly one of "rateMbps", "downTrace"+"upTrace" or "model" (got ${kinds === 0 ? 'none' : 'several'})`);
      return;
    }
    if ((c.downTrace === undefined) !== (c.upTrace === undefined)) {
      problems.push(`${where}: "${c.downTrace === undefined ? 'downTrace' : 'upTrace'}" is missing: a trace carrier needs both directions`);
      return;
    }
    if (c.seed !== undefined && c.model === undefined) problems.push(`${where}.seed: only a "model" carrier takes a seed`);
    if (c.rateSteps !== undefined) {
      if (c.rateMbps === undefined) problems.push(`${where}.rateSteps: only a "rateMbps" carrier takes rate steps`);
      c.rateSteps.forEach((st, k) => {
        if (st.atS >= s.durationS) problems.push(`${where}.rateSteps[${k}].atS: ${st.atS} s is not before the scenario's durationS ${s.durationS}`);
        const prev = c.rateSteps![k - 1];
        if (prev && st.atS <= prev.atS) problems.push(`${where}.rateSteps[${k}].atS: ${st.atS} s must come after the step before it (${prev.atS} s)`);
      });
    }
    for (const [k, o] of (c.outages ?? []).entries()) {
      if (o.atS + o.forS > s.durationS) {
        problems.push(`${where}.outages[${k}]: ends at ${o.atS + o.forS} s, after the scenario's durationS ${s.durationS}`);
      }
    }
    const name = c.name ?? (c.model ? `${c.model}-${index}` : `c${index}`);
    if (names.has(name)) problems.push(`${where}.name: "${name}" is used by another carrier`);
    names.add(name);

    const keep = 1 - outageFraction(c.outages, s.durationS);
    const loss = 1 - (c.lossPct ?? 0) / 100;
    if (c.rateMbps !== undefined) {
      const src = { rateMbps: c.rateMbps };
      const m = steppedMeanMbps(c.rateMbps, c.rateSteps, s.durationS) * keep * loss;
      resolved.push({ index, name, input: c, up: src, down: src, meanMbps: { up: m, down: m } });
    } else if (c.downTrace !== undefined && c.upTrace !== undefined) {
      const down = loadTrace(c.downTrace, `${where}.downTrace`);
      const up = loadTrace(c.upTrace, `${where}.upTrace`);
      if (!down?.trace || !up?.trace) return;
      resolved.push({
        index, name, input: c, up, down,
        meanMbps: { up: traceMeanMbps(up.trace) * keep * loss, down: traceMeanMbps(down.trace) * keep * loss },
      });
    } else if (c.model !== undefined) {
      if (!models) {
        problems.push(`${where}.model: "${c.model}" needs the link emulator's models (test/emulator/models.ts), which this checkout does not have`);
        return;
      }
      if (!models.names.includes(c.model)) {
        problems.push(`${where}.model: unknown model "${c.model}" (known: ${models.names.join(', ')})`);
        return;
      }
      const m = models.meanMbps(c.model, c.seed ?? 1, s.durationS);
      resolved.push({ index, name, input: c, meanMbps: { up: m.up * keep * loss, down: m.down * keep * loss } });
    }
  });

  const seen = new Set<string>();
  s.systems.forEach((sys, i) => {
    if (seen.has(sys)) problems.push(`systems[${i}]: "${sys}" is listed twice`);
    seen.add(sys);
  });
  if (s.systems.includes('mptcp')) {
    s.traffic.forEach((t, i) => {
      if (t.kind === 'udp') problems.push(`traffic[${i}]: "udp" cannot run over the "mptcp" system (MPTCP carries TCP only)`);
    });
  }
  if (problems.length) throw new ScenarioError(file, problems);
  return { ...s, file: resolve(file), resolvedCarriers: resolved };
}

/** Reads and validates a scenario file. */
export function loadScenario(file: string, models?: ModelCatalog): ResolvedScenario {
  const abs = resolve(file);
  if (!existsSync(abs)) throw new ScenarioError(file, [`scenario file not found: ${abs}`]);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(abs, 'utf8'));
  } catch (err) {
    throw new ScenarioError(file, [`not valid JSON: ${(err as Error).message}`]);
  }
  return validateScenario(raw, abs, models);
}
