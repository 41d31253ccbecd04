// The scheduler decides which path carries a packet. It sees paths only through PathView, so
// the same algorithm runs on real UDP paths and on simulated links with a SimClock.

export interface PathView {
  readonly id: number;
  readonly name: string;
  /** False when the path is down or not yet confirmed by the peer. */
  usable(): boolean;
  /** Measured delivery rate, bytes per microsecond (0 = not measured yet). */
  readonly deliveryRate: number;
  /** Smoothed S3-2 delay in microseconds (0 = not measured yet). */
  readonly srttUs: number;
  readonly minRttUs: number;
  /** Bytes sent on the path and not yet acknowledged by the peer. */
  inflightBytes(): number;
  /** Measured loss ratio of the path (0..1). */
  readonly lossRate: number;
  /** The latest loss sample and how many there have been (the default cap follows queue overflow by them). */
  readonly lossSample?: number;
  readonly lossSamples?: number;
}

export interface Scheduler {
  readonly name: string;
  /** The path for a packet of `bytes` wire bytes, or undefined when no path is usable. */
  pick(paths: readonly PathView[], bytes: number): PathView | undefined;
  /**
   * The set of paths for a packet of importance F (S2-8): one path for F = 0, copies on
   * several when F is large. Schedulers without it send one copy (pick).
   */
  pickSet?(paths: readonly PathView[], bytes: number, F: number): PathView[];
}

export type SchedulerFactory = () => Scheduler;

const registry = new Map<string, SchedulerFactory>();

/** Register an algorithm under a name so policy can select it (S2-11). */
export function registerScheduler(name: string, factory: SchedulerFactory): void {
  registry.set(name, factory);
}

export function createScheduler(name: string): Scheduler {
  const f = registry.get(name);
  if (!f) throw new Error(`unknown scheduler "${name}" (known: ${[...registry.keys()].join(', ')})`);
  return f();
}

export function schedulerNames(): string[] {
  return [...registry.keys()];
}
