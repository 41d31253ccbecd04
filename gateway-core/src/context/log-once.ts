// A source that cannot read (no mmcli, gpsd down, a bad file) polls again and again: the log gets
// one line when a problem starts and one when it ends, not one per poll.
import type { Logger } from '../log.js';

export class LogOnce {
  private readonly active = new Map<string, string>();

  constructor(private readonly log: Logger, private readonly source: string) {}

  /** Logs `message` (warn) unless problem `key` is already reported (in whatever words). */
  problem(key: string, message: string, fields: Record<string, unknown> = {}): void {
    if (this.active.has(key)) return;
    this.active.set(key, message);
    this.log.warn({ source: this.source, ...fields }, message);
  }

  /** The problem `key` is over: one info line, and the next occurrence is logged again. */
  resolved(key: string, message?: string): void {
    if (!this.active.delete(key)) return;
    if (message) this.log.info({ source: this.source }, message);
  }

  /** Problems reported and not yet resolved (for status and tests). */
  get problems(): string[] {
    return [...this.active.values()];
  }
}
