// Configuration of path MTU discovery (dataPlane.pmtu, both gateways). Composed into
// config/schema.ts; every key is documented in docs/configuration.md.
import type { z } from 'zod';
import { bool, intIn, section } from '../config/fields.js';

/** IPv6's minimum link MTU (1280) minus IPv4 + UDP headers: a datagram size nearly every carrier passes. */
export const DEFAULT_PMTU_FLOOR = 1252;

export const pmtuSchema = section({
  enabled: bool().default(true),
  floor: intIn(548, 9000).default(DEFAULT_PMTU_FLOOR),
  probeTimeoutMs: intIn(20, 10_000).default(500),
  researchIntervalS: intIn(0, 86_400).default(600),
}).prefault({});

export type PmtuConfig = z.output<typeof pmtuSchema>;
