// The demo's three carriers. One function on purpose: the tbf stand-ins are to be replaced by
// trace-driven cellular models, and this is the only place the demo decides what a carrier is.
import type { CarrierSpec } from '../harness/topology.js';

export function demoCarriers(): CarrierSpec[] {
  return [
    { name: 'lte-a', rateMbit: 20 },
    { name: 'lte-b', rateMbit: 10 },
    { name: 'lte-c', rateMbit: 5 },
  ];
}

/** How a carrier is shown in the table ("20 Mbit/s tbf"). */
export function describeCarrier(c: CarrierSpec): string {
  return c.rateMbit === undefined ? 'unshaped' : `tbf ${c.rateMbit} Mbit/s`;
}
