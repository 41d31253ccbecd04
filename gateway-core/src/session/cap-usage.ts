// Data-cap accounting per carrier and billing period, kept in a small JSON state file so a
// restart of the edge (or a re-established session) does not forget what was already used.
//
// The file holds, per carrier, the start of the billing period its count belongs to and the
// bytes counted in it: {"version":1,"carriers":{"lte-a":{"period":"2026-11-01","bytes":123}}}.
// A count whose period is over is reset when it is next read or added to. Writes go to a
// temporary file that is renamed over the old one, so a crash leaves the old or the new file,
// never half of one. Without a file the count lives in memory only.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

interface Entry { period: string; bytes: number }

/** Start (UTC date) of the billing period that contains `now`, for periods starting on `day`. */
export function billingPeriodStart(now: Date, day: number): string {
  let y = now.getUTCFullYear();
  let m = now.getUTCMonth();
  if (now.getUTCDate() < day) {
    m -= 1;
    if (m < 0) { m = 11; y -= 1; }
  }
  return `${y}-${String(m + 1).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

export class CapUsage {
  private readonly entries = new Map<string, Entry>();
  private dirty = false;
  /** Why the last load or save failed ('' = it did not). */
  lastError = '';
  saves = 0;

  /**
   * @param file  the state file ('' or undefined: memory only)
   * @param now   wall-clock time (billing periods are calendar periods)
   */
  constructor(readonly file?: string, private readonly now: () => Date = () => new Date()) {
    if (file) this.load(file);
  }

  private load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.lastError = `cannot read ${file}: ${(e as Error).message}`;
      return;
    }
    try {
      const doc = JSON.parse(text) as { carriers?: Record<string, { period?: unknown; bytes?: unknown }> };
      for (const [name, e] of Object.entries(doc.carriers ?? {})) {
        if (typeof e.period === 'string' && typeof e.bytes === 'number' && Number.isFinite(e.bytes) && e.bytes >= 0) {
          this.entries.set(name, { period: e.period, bytes: e.bytes });
        }
      }
    } catch (e) {
      // A corrupt file must not stop the edge: start counting again, and say why.
      this.lastError = `ignored corrupt ${file}: ${(e as Error).message}`;
    }
  }

  private entry(name: string, billingDay: number): Entry {
    const period = billingPeriodStart(this.now(), billingDay);
    let e = this.entries.get(name);
    if (!e || e.period !== period) {
      e = { period, bytes: 0 };
      this.entries.set(name, e);
      this.dirty = true;
    }
    return e;
  }

  add(name: string, bytes: number, billingDay = 1): void {
    if (bytes <= 0) return;
    this.entry(name, billingDay).bytes += bytes;
    this.dirty = true;
  }

  used(name: string, billingDay = 1): number {
    return this.entry(name, billingDay).bytes;
  }

  /** Write the file if anything changed; returns false when the write failed (lastError says why). */
  save(): boolean {
    if (!this.file || !this.dirty) return true;
    const doc = { version: 1, carriers: Object.fromEntries(this.entries) };
    const tmp = `${this.file}.tmp`;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileSync(tmp, JSON.stringify(doc));
      renameSync(tmp, this.file);
    } catch (e) {
      this.lastError = `cannot write ${this.file}: ${(e as Error).message}`;
      return false;
    }
    this.dirty = false;
    this.saves++;
    return true;
  }
}
