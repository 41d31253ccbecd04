// S3-3 paced mode on a real or simulated Clock: when the controller is in paced mode and the
// next packet is not yet due, one timer is armed for the due time; when it fires, the send's
// theoretical and ACTUAL timer delay are recorded in the controller (the pacing-fault guard
// of S3-4 needs the actual one: Node timers are ~1 ms coarse and late when the loop is busy).
import type { Clock, TimerHandle } from '../clock.js';
import type { S3Controller } from './s3.js';

export class Pacer {
  private timer: TimerHandle | undefined;

  /** `release` is called when the paced packet may go; it should send (and call cc.onSent). */
  constructor(private readonly clock: Clock, private readonly cc: S3Controller, private readonly release: () => void) {}

  /** Whether a paced release is pending. */
  get armed(): boolean {
    return this.timer !== undefined;
  }

  /**
   * Arm the timer for the next paced send. No-op in window mode, when already armed, or when
   * the send is already due (then it is the window, i.e. an ack, that the path waits for).
   */
  arm(): void {
    if (this.timer || this.cc.mode() !== 'paced') return;
    const armedAt = this.clock.nowUs();
    const waitUs = this.cc.nextSendAtUs(armedAt) - armedAt;
    if (waitUs <= 0) return;
    const theoreticalUs = this.cc.pacingDelayUs();
    this.timer = this.clock.setTimer(waitUs, () => {
      this.timer = undefined;
      const now = this.clock.nowUs();
      // Actual delay = the intended inter-packet delay plus however late the timer fired.
      const lateUs = Math.max(0, now - armedAt - waitUs);
      this.cc.recordPacedSend(theoreticalUs, theoreticalUs + lateUs, now);
      this.release();
    });
  }

  cancel(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }
}
