// The demo's three carriers, the only place the demo decides what a carrier is. By default
// three synthetic cellular models run in the user-space link emulator (test/emulator): an urban
// LTE cell, LTE on a highway and a 5G NR cell scaled down to fit the demo's two cores, about
// 50 Mbit/s of mean downlink capacity together. `--carriers tbf` keeps the fixed-rate tbf
// stand-ins (20/10/5 Mbit/s, no delay) for comparison.
import type { FeedCarrier } from '../emulator/context-feed.js';
import { modelCarrier } from '../emulator/models.js';
import { traceMeanMbps } from '../emulator/trace.js';
import type { CarrierSpec, Topology } from '../harness/topology.js';

export const CARRIER_KINDS = ['models', 'tbf'] as const;
export type CarrierKind = (typeof CARRIER_KINDS)[number];

/** The models and their rate scale: the 5G cell (150 Mbit/s) is scaled to 18 Mbit/s. */
export const DEMO_MODELS: readonly { model: string; rateScale: number }[] = [
  { model: 'lte-urban', rateScale: 1 },
  { model: 'lte-highway', rateScale: 1 },
  { model: '5g-nr', rateScale: 0.12 },
];

/**
 * The carriers. Generated traces cover durationS (they loop after that); a demo that runs until
 * Ctrl-C gets five minutes before the first repeat.
 */
export function demoCarriers(kind: CarrierKind = 'models', opts: { seed?: number; durationS?: number } = {}): CarrierSpec[] {
  if (kind === 'tbf') {
    return [
      { name: 'lte-a', rateMbit: 20 },
      { name: 'lte-b', rateMbit: 10 },
      { name: 'lte-c', rateMbit: 5 },
    ];
  }
  const durationS = Math.max(30, Math.ceil(opts.durationS ?? 300));
  return DEMO_MODELS.map((m, i) => ({
    name: m.model,
    emulate: modelCarrier(m.model, (opts.seed ?? 1) + i, durationS, { rateScale: m.rateScale }),
  }));
}

/**
 * S2-5 context for the model carriers: each carrier's radio KPIs from the same model, seed and
 * duration as its traces (test/emulator/context-feed.ts); none for the tbf stand-ins.
 */
export function demoContextCarriers(kind: CarrierKind = 'models', opts: { seed?: number; durationS?: number } = {}): FeedCarrier[] | undefined {
  if (kind === 'tbf') return undefined;
  const durationS = Math.max(30, Math.ceil(opts.durationS ?? 300));
  return DEMO_MODELS.map((m, i) => ({ carrier: m.model, model: m.model, seed: (opts.seed ?? 1) + i, durationS }));
}

/** Mean downlink + uplink capacity of the carriers in Mbit/s (emulated traces or tbf rates). */
export function meanCapacityMbps(carriers: readonly CarrierSpec[]): { down: number; up: number } {
  let down = 0;
  let up = 0;
  for (const c of carriers) {
    if (c.emulate) {
      down += c.emulate.down.trace ? traceMeanMbps(c.emulate.down.trace) : (c.emulate.down.rateMbps ?? 0);
      up += c.emulate.up.trace ? traceMeanMbps(c.emulate.up.trace) : (c.emulate.up.rateMbps ?? 0);
    } else if (c.rateMbit !== undefined) {
      down += c.rateMbit;
      up += c.rateMbit;
    }
  }
  return { down, up };
}

/** How a carrier is shown in the table ("tbf 20 Mbit/s", "~20/6 Mbit/s 25 ms": mean down/up, one-way delay). */
export function describeCarrier(c: CarrierSpec): string {
  if (c.emulate) {
    const { down, up } = meanCapacityMbps([c]);
    return `~${down.toFixed(0)}/${up.toFixed(0)} Mbit/s ${c.emulate.down.delayMs ?? 0} ms`;
  }
  return c.rateMbit === undefined ? 'unshaped' : `tbf ${c.rateMbit} Mbit/s`;
}

/** Per emulated carrier: emulator time (s) and capacity offered so far (bytes) each way. */
export type CapacitySnapshot = ({ t: number; down: number; up: number } | null)[];

/** Reads every emulated carrier's capacity counters (null for tbf carriers). */
export async function capacitySnapshot(topo: Topology): Promise<CapacitySnapshot> {
  return Promise.all(topo.carriers.map(async (c, i) => {
    if (!c.emulate) return null;
    const s = await topo.emulatorStats(i);
    return { t: s.t, down: s.down.capacityBytes, up: s.up.capacityBytes };
  }));
}

/** Capacity the emulators offered between two snapshots, Mbit/s summed over carriers; null without emulation. */
export function capacityBetween(a: CapacitySnapshot, b: CapacitySnapshot): { down: number; up: number } | null {
  let down = 0;
  let up = 0;
  let any = false;
  a.forEach((x, i) => {
    const y = b[i];
    if (!x || !y || y.t <= x.t) return;
    any = true;
    down += ((y.down - x.down) * 8) / (y.t - x.t) / 1e6;
    up += ((y.up - x.up) * 8) / (y.t - x.t) / 1e6;
  });
  return any ? { down, up } : null;
}
