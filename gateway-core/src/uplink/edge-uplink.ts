// The edge's hook: one reporter fed from the gateway's TelemetryView (the same view its metrics
// use) and, when a context source is attached, the S2-5 snapshot. edge.ts only starts and stops it.
import type { Clock } from '../clock.js';
import type { EdgeConfig } from '../config/schema.js';
import type { ContextSnapshot } from '../context/types.js';
import type { Logger } from '../log.js';
import type { TelemetryView } from '../telemetry/view.js';
import { grpcUplink } from './grpc-stream.js';
import { TelemetryReporter } from './reporter.js';
import { buildSample } from './sample.js';

/** The drop reason under which the reporter's queue overflows are exported (braid.drops). */
export const UPLINK_DROP_REASON = 'telemetry-uplink-queue-full';

export interface EdgeUplink {
  readonly reporter: TelemetryReporter;
  /** The S2-5 context to include (radio per carrier, motion); set by whoever runs the context sources. */
  context: (() => ContextSnapshot | undefined) | undefined;
  /** Counters to merge into the gateway's drops (exported as braid.drops). */
  drops(): Record<string, number>;
  stop(): void;
}

export interface EdgeUplinkOptions {
  cfg: EdgeConfig;
  view: TelemetryView;
  clock: Clock;
  logger: Logger;
  /** Transport kind (udp/tcp/tls) per path id, from the S0 racers. */
  transports?: () => (string | null | undefined)[];
  /** Where the stream goes when not straight to control.cloud: the edge's carrier relay (control.viaCarriers). */
  target?: { target: string; serverName: string | undefined };
}

/** Starts reporting, or returns undefined when `uplink.enabled` is false. */
export function startEdgeUplink(o: EdgeUplinkOptions): EdgeUplink | undefined {
  const { cfg } = o;
  if (!cfg.uplink.enabled) return undefined;
  const carriers = cfg.carriers.map((c) => ({
    name: c.name, interface: c.interface, operator: c.metadata?.operator, mcc: c.metadata?.mcc, mnc: c.metadata?.mnc, technology: c.metadata?.technology,
  }));
  const up: EdgeUplink = {
    context: undefined,
    reporter: new TelemetryReporter({
      edgeId: cfg.id,
      clock: o.clock,
      logger: o.logger,
      transport: grpcUplink({ target: o.target?.target ?? cfg.control.cloud, tls: cfg.control.tls, serverName: o.target ? o.target.serverName : cfg.control.serverName }),
      settings: {
        maxReportsPerSecond: cfg.uplink.maxReportsPerSecond,
        stableIntervalMs: cfg.uplink.stableIntervalMs,
        queueReports: cfg.uplink.queueReports,
      },
      sample: () => buildSample({
        session: o.view.sessions()[0], carriers, transports: o.transports?.(), context: up.context?.(), nowUnixMs: Date.now(),
      }),
    }),
    drops: () => ({ [UPLINK_DROP_REASON]: up.reporter.stats().dropped }),
    stop: () => up.reporter.stop(),
  };
  up.reporter.start();
  return up;
}
