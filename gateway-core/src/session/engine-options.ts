// The scheduling engine's session options from a gateway's data-plane configuration: one
// place, so the edge and the cloud configure their sessions the same way.
import type { DataPlaneConfig } from '../config/schema.js';
import { ipv4ToNumber } from '../config/net.js';
import { createScheduler } from '../schedule/scheduler.js';
import { UtilityScheduler } from '../schedule/utility.js';
import '../schedule/rate-weighted.js';
import type { SessionOptions } from './session.js';
import { isRelayFrame } from '../relay/frame.js';

export type EngineOptions = Pick<SessionOptions,
  'scheduler' | 'schedulers' | 'retransmitScheduler' | 'pinBytes' | 'congestion' | 'lowLatency' | 'compressHeaders' | 'queue' | 'privilegedUsers' | 'ordersItself'>;

/**
 * Bulk traffic is striped by the rate-weighted (earliest-arrival) scheduler; interactive and
 * real-time traffic, and important packets, by the S2-8 utility (lowest delay, copies when
 * they pay). S2-11: the algorithm is chosen per class.
 */
export function engineOptions(dp: Pick<DataPlaneConfig, 'congestion' | 'lowLatency' | 'compressHeaders' | 'schedule' | 'sendQueue'>): EngineOptions {
  const utility = new UtilityScheduler({ alpha: dp.schedule.alpha, beta: dp.schedule.beta });
  return {
    scheduler: createScheduler('rate-weighted'),
    schedulers: { interactive: utility, realtime: utility },
    retransmitScheduler: utility,
    pinBytes: dp.schedule.pinBytes,
    congestion: dp.congestion,
    lowLatency: dp.lowLatency,
    compressHeaders: dp.compressHeaders,
    queue: dp.sendQueue,
    privilegedUsers: dp.schedule.privilegedUsers.map((ip) => String(ipv4ToNumber(ip))),
    // The TCP relay puts its frames in order itself: a late one is still worth delivering.
    ordersItself: isRelayFrame,
  };
}
