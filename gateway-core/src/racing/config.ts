// Configuration of S0 transport racing (edge: dataPlane.racing) and of the cloud's stream
// listeners (dataPlane.tcpListen, dataPlane.tlsListen). Composed into config/schema.ts; every
// key is documented in docs/configuration.md (a test keeps the two in step).
import type { z } from 'zod';
import { bool, intIn, listOf, oneOf, section, stringParsedBy } from '../config/fields.js';
import { parseHostPort } from '../config/net.js';
import { DEFAULT_WEIGHTS, weightsProblem } from './weights.js';

export const TRANSPORT_KINDS = ['udp', 'tcp', 'tls'] as const;

const weightsSchema = section({
  p1: intIn(1, 1_000_000).default(DEFAULT_WEIGHTS.p1),
  p2: intIn(1, 1_000_000).default(DEFAULT_WEIGHTS.p2),
  p3: intIn(1, 1_000_000).default(DEFAULT_WEIGHTS.p3),
}).superRefine((w, ctx) => {
  const problem = weightsProblem(w);
  if (problem) ctx.addIssue({ code: 'custom', input: w, message: `expected ${problem.replace(/^weights must satisfy/, 'weights with')}` });
}).prefault({});

/** Edge: dataPlane.racing. */
export const racingSchema = section({
  cascade: listOf(oneOf(TRANSPORT_KINDS), 'a list of transports (udp, tcp, tls) in the order they are tried')
    .min(1)
    .default(['udp', 'tcp', 'tls']),
  switchThresholdMs: intIn(10, 600_000).default(10_000),
  anomalyThresholdMs: intIn(100, 600_000).default(5_000),
  weights: weightsSchema,
  keepSeveralStreams: bool().default(false),
  tcpPort: intIn(1, 65535).optional(),
  tlsPort: intIn(1, 65535).default(443),
  // S0-7: a traffic class bound to a stream (1-based) goes on it while that stream is connected.
  typeBindings: section({
    realtime: intIn(1, 3).optional(),
    interactive: intIn(1, 3).optional(),
    bulk: intIn(1, 3).optional(),
  }).prefault({}),
}).superRefine((r, ctx) => {
  for (const [type, stream] of Object.entries(r.typeBindings)) {
    if (stream === undefined) continue;
    if (stream > r.cascade.length) {
      ctx.addIssue({ code: 'custom', path: ['typeBindings', type], input: stream, message: `expected a stream of the cascade (1..${r.cascade.length}), got ${stream}` });
    } else if (!r.keepSeveralStreams) {
      // Without it the losing streams close: a binding could never take effect.
      ctx.addIssue({ code: 'custom', path: ['typeBindings', type], input: stream, message: 'expected keepSeveralStreams: true (a type can only be bound to a stream that is kept open)' });
    }
  }
}).prefault({});

export type RacingConfig = z.output<typeof racingSchema>;

/**
 * An idle carrier hears from the peer only once per keepalive: an anomaly threshold shorter than
 * two keepalives would rerun the racing on healthy idle carriers.
 */
export function checkAnomalyAfterKeepalive(dp: { keepaliveMs: number; racing: { anomalyThresholdMs: number } }, ctx: z.RefinementCtx): void {
  if (dp.racing.anomalyThresholdMs <= 2 * dp.keepaliveMs) {
    ctx.addIssue({
      code: 'custom',
      path: ['racing', 'anomalyThresholdMs'],
      input: dp.racing.anomalyThresholdMs,
      message: `expected more than twice keepaliveMs (${dp.keepaliveMs}) so an idle carrier is not re-established between keepalives, got ${dp.racing.anomalyThresholdMs}`,
    });
  }
}

/** Cloud: a host:port to listen on, or "" for none. */
export const streamListen = (what: string, def: string) =>
  stringParsedBy(`host:port to listen on for ${what}, or "" to disable it`, (s) => {
    if (s !== '') parseHostPort(s);
  }).default(def);
