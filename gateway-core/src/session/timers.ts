// All of a session's timers in one place. One periodic tick drives the coarse work (acks due,
// keepalive probes, liveness, reorder hold deadlines); nothing else in the session arms timers.
// On a SimClock the same tick runs deterministically.
import type { Clock, TimerHandle } from '../clock.js';

export interface TickHandlers {
  /** Called every tick with the current time. */
  onTick(nowUs: number): void;
}

export class SessionTimers {
  private handle: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly clock: Clock, private readonly tickUs: number, private readonly handlers: TickHandlers) {}

  start(): void {
    this.stopped = false;
    this.arm();
  }

  private arm(): void {
    if (this.stopped) return;
    this.handle = this.clock.setTimer(this.tickUs, () => {
      this.handlers.onTick(this.clock.nowUs());
      this.arm();
    });
  }

  stop(): void {
    this.stopped = true;
    this.handle?.cancel();
    this.handle = undefined;
  }
}
