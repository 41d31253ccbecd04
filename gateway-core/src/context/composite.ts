// The edge's one view of its context: the configured sources merged. Per carrier, a field comes
// from the first source in context.sources that knows it (a real modem before the emulator), the
// others fill what it lacks; the vehicle's motion likewise. Values older than staleMs are left
// out, so a gpsd that died an hour ago does not keep the train "at 300 km/h".
import type { Logger } from '../log.js';
import { Listeners } from './listeners.js';
import type { ContextSnapshot, ContextSource, MotionContext, RadioContext } from './types.js';

export const HIGH_SPEED_KMH = 160;

/** S2-12: the vehicle is at high speed (>= thresholdKmh, 160 km/h by default) by the snapshot's motion. */
export function isHighSpeed(snapshot: ContextSnapshot, thresholdKmh = HIGH_SPEED_KMH): boolean {
  const v = snapshot.motion?.speedKmh;
  return v !== undefined && v >= thresholdKmh;
}

export function mergeSnapshots(parts: readonly Partial<ContextSnapshot>[], nowMs: number, staleMs: number): ContextSnapshot {
  const fresh = (atMs: number): boolean => nowMs - atMs <= staleMs;
  const radio = new Map<string, RadioContext>();
  let motion: MotionContext | undefined;
  for (const p of parts) {
    for (const r of p.radio ?? []) {
      if (!fresh(r.atMs)) continue;
      const have = radio.get(r.carrier);
      radio.set(r.carrier, have ? { ...r, ...have } : { ...r });
    }
    if (p.motion && fresh(p.motion.atMs)) motion = motion ? { ...p.motion, ...motion } : { ...p.motion };
  }
  const out: ContextSnapshot = { radio: [...radio.values()] };
  if (motion) out.motion = motion;
  return out;
}

export interface CompositeOptions {
  logger: Logger;
  staleMs?: number;
  now?: () => number;
}

export class CompositeSource implements ContextSource {
  readonly name = 'composite';
  private readonly listeners = new Listeners();
  private readonly unsubscribe: (() => void)[] = [];

  constructor(readonly sources: readonly ContextSource[], private readonly opts: CompositeOptions) {}

  /** Starts every source; one that fails to start is logged and left out, never fatal. */
  async start(): Promise<void> {
    for (const s of this.sources) {
      this.unsubscribe.push(s.onChange(() => this.listeners.emit((e) => this.opts.logger.error({ err: (e as Error).message }, 'context listener failed'))));
    }
    await Promise.all(this.sources.map((s) => s.start().catch((e: unknown) => {
      this.opts.logger.error({ source: s.name, err: (e as Error).message }, 'context source failed to start');
    })));
  }

  snapshot(): ContextSnapshot {
    return mergeSnapshots(this.sources.map((s) => s.snapshot()), (this.opts.now ?? Date.now)(), this.opts.staleMs ?? 15_000);
  }

  onChange(listener: () => void): () => void {
    return this.listeners.add(listener);
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    await Promise.all(this.sources.map((s) => s.stop().catch(() => undefined)));
  }
}
