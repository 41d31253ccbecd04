// The one place that turns a scenario carrier into the link emulator's spec (test/emulator) and
// that reads back what a link delivered and could have delivered. Every carrier is emulated, the
// plain-rate ones too, so that all carriers of a scenario share one mechanism.
import { MODEL_NAMES, modelCarrier } from '../../test/emulator/models.js';
import type { CarrierEmulation, DirectionSpec } from '../../test/emulator/spec.js';
import { constantRateTrace } from '../../test/emulator/trace.js';
import type { CarrierSpec, Topology } from '../../test/harness/topology.js';
import { outageFraction, type ModelCatalog, type ResolvedCarrier, type ResolvedScenario } from './scenario.js';

export interface EmulatorApi {
  modelNames: readonly string[];
  modelCarrier(name: string, seed: number, durationS?: number): CarrierEmulation;
}

export const EMULATOR: EmulatorApi = { modelNames: MODEL_NAMES, modelCarrier: (n, s, d) => modelCarrier(n, s, d) };

/** Opportunities of a looping trace within [fromMs, toMs), times 1500 bytes, as Mbit/s. */
function traceWindowMbps(trace: readonly number[], fromMs: number, toMs: number): number {
  const period = trace[trace.length - 1]!;
  let n = 0;
  for (let base = Math.floor(fromMs / period) * period; base < toMs; base += period) {
    for (const t of trace) {
      const at = base + t;
      if (at >= fromMs && at < toMs) n++;
    }
  }
  return (n * 1500 * 8) / ((toMs - fromMs) * 1000);
}

/** Seconds of model trace generated beyond the run (the trace loops after them). */
const MODEL_SPARE_S = 30;

/**
 * The loader's view of the models: names, and mean capacity over the window the traffic will
 * see ([LEAD_S, LEAD_S + durationS) of the model's timeline, outages included).
 */
export function modelCatalog(emu: EmulatorApi = EMULATOR): ModelCatalog {
  return {
    names: emu.modelNames,
    meanMbps(name, seed, durationS) {
      const m = emu.modelCarrier(name, seed, durationS + LEAD_S + MODEL_SPARE_S);
      const mean = (d: DirectionSpec): number => (d.trace
        ? traceWindowMbps(d.trace, LEAD_S * 1000, (LEAD_S + durationS) * 1000)
        : (d.rateMbps ?? 0) * (1 - outageFraction(d.outages, durationS))) * (1 - (d.lossPct ?? 0) / 100);
      return { up: mean(m.up), down: mean(m.down) };
    },
  };
}

/**
 * Seconds between building the topology (the emulator's clock starts) and the start of the
 * traffic, for every system alike: the scenario's outages are shifted by it, so that each system
 * meets the same link conditions at the same point of its run whatever its own setup time. Long
 * enough for the Braid gateways to start on a busy 2-core machine (about 5 s idle, 20 s seen
 * under a load average of 12); a system that needs longer is noted in its result.
 */
export const LEAD_S = 15;

function seedFor(c: ResolvedCarrier, dir: 'up' | 'down'): number {
  return ((c.input.seed ?? 1) * 1009 + c.index * 2 + (dir === 'up' ? 1 : 0)) % 2 ** 31;
}

function directionSpec(c: ResolvedCarrier, dir: 'up' | 'down', base: DirectionSpec, leadS: number): DirectionSpec {
  const i = c.input;
  const out: DirectionSpec = { ...base, seed: base.seed ?? seedFor(c, dir) };
  if (i.delayMs !== undefined) out.delayMs = i.delayMs;
  if (i.lossPct !== undefined) out.lossPct = i.lossPct;
  if (i.queuePackets !== undefined) out.queuePackets = i.queuePackets;
  if (i.outages?.length) {
    out.outages = [...(base.outages ?? []), ...i.outages.map((o) => ({ atS: o.atS + leadS, forS: o.forS }))];
  }
  return out;
}

/**
 * The emulation of one carrier: model, trace or rate, with the scenario's delay, loss and outages
 * on top; the outages are shifted by `leadS`, the time on the links' clock when the traffic starts.
 */
export function carrierEmulation(c: ResolvedCarrier, emu: EmulatorApi, durationS: number, leadS = LEAD_S): CarrierEmulation {
  if (c.input.model !== undefined) {
    // The model's own timeline (fades, handovers) runs from the emulator's start; its length
    // does not depend on leadS, so every system gets the very same traces.
    const m = emu.modelCarrier(c.input.model, c.input.seed ?? 1, durationS + LEAD_S + MODEL_SPARE_S);
    return { up: directionSpec(c, 'up', m.up, leadS), down: directionSpec(c, 'down', m.down, leadS) };
  }
  if (c.input.rateMbps !== undefined && c.input.rateSteps?.length) {
    const trace = steppedRateTrace(c.input.rateMbps, c.input.rateSteps, leadS, durationS + leadS + MODEL_SPARE_S);
    return { up: directionSpec(c, 'up', { trace }, leadS), down: directionSpec(c, 'down', { trace }, leadS) };
  }
  const base = (d: 'up' | 'down'): DirectionSpec => {
    const src = c[d];
    return src?.trace ? { trace: src.trace } : { rateMbps: src?.rateMbps ?? 0 };
  };
  return { up: directionSpec(c, 'up', base('up'), leadS), down: directionSpec(c, 'down', base('down'), leadS) };
}

/**
 * A Mahimahi trace (ms from the emulator's start, looping at totalS) for a rate that changes at
 * the steps' times; the steps count from the traffic's start, `leadS` into the emulator's clock.
 * Built from 100 ms pieces of constantRateTrace so that each second carries its rate exactly.
 */
export function steppedRateTrace(rateMbps: number, steps: readonly { atS: number; rateMbps: number }[], leadS: number, totalS: number): number[] {
  const out: number[] = [];
  const totalMs = Math.ceil(totalS) * 1000;
  const rateAt = (ms: number): number => {
    let r = rateMbps;
    for (const st of steps) if (ms >= (leadS + st.atS) * 1000) r = st.rateMbps;
    return r;
  };
  // 100 ms pieces: a step lands within 100 ms of its time whatever leadS is.
  for (let from = 0; from < totalMs; from += 100) {
    for (const t of constantRateTrace(rateAt(from), 100)) out.push(from + t);
  }
  return out;
}

/** What the topology gets for each carrier of the scenario. */
export function carrierSpecs(s: ResolvedScenario, leadS = LEAD_S, emu: EmulatorApi = EMULATOR): CarrierSpec[] {
  return s.resolvedCarriers.map((c) => ({ name: c.name, emulate: carrierEmulation(c, emu, s.durationS, leadS) }));
}

/** Byte counters of one carrier: what it delivered and what it could have delivered, per direction. */
export interface CarrierSample {
  up: { delivered: number; capacity: number };
  down: { delivered: number; capacity: number };
  atMs: number;
}

export async function sampleCarrier(topo: Topology, i: number): Promise<CarrierSample> {
  const atMs = performance.now();
  const s = await topo.emulatorStats(i);
  return {
    up: { delivered: s.up.deliveredBytes, capacity: s.up.capacityBytes },
    down: { delivered: s.down.deliveredBytes, capacity: s.down.capacityBytes },
    atMs,
  };
}
