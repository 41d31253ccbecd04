// S2-5 context from the link emulator's models, for tests and the demo: the emulator side
// (test/emulator/context-feed.ts) rewrites a JSON file (temporary name + rename) with what the
// emulated modems and GPS would report; this source reads it every pollMs. A file, not a socket:
// the emulator and the edge run in different network namespaces, and a file needs neither a
// route nor a listener between them; the rename makes every read see one whole write.
//
//   { "radio": [{ "carrier": "a", "rsrpDbm": -97.5, "rsrqDb": -10.2, "sinrDb": 11.4,
//                 "cellId": "0A1B2C31", "technology": "lte", "atMs": ... }],
//     "motion": { "latitude": 39.9, "longitude": 116.4, "speedKmh": 300, "atMs": ... } }
//
// A missing file, bad JSON or a bad field: one log line (LogOnce), the last good values stay.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { Listeners } from './listeners.js';
import { LogOnce } from './log-once.js';
import type { ContextSnapshot, ContextSource, MotionContext, RadioContext } from './types.js';

const finite = z.number().finite();
const radioSchema = z.object({
  carrier: z.string().min(1),
  operatorName: z.string().optional(),
  mcc: z.string().regex(/^\d{3}$/).optional(),
  mnc: z.string().regex(/^\d{2,3}$/).optional(),
  technology: z.string().optional(),
  rsrpDbm: finite.min(-160).max(0).optional(),
  rsrqDb: finite.min(-40).max(20).optional(),
  sinrDb: finite.min(-30).max(60).optional(),
  cellId: z.string().optional(),
  atMs: finite,
});
const motionSchema = z.object({
  latitude: finite.min(-90).max(90).optional(),
  longitude: finite.min(-180).max(180).optional(),
  speedKmh: finite.min(0).max(2000).optional(),
  atMs: finite,
});
const fileSchema = z.object({ radio: z.array(radioSchema).default([]), motion: motionSchema.optional() });

export interface EmulatorSourceOptions {
  file: string;
  /** Only these carriers' entries are used (the edge's carriers[].name). */
  carriers: readonly string[];
  logger: Logger;
  /** Default 1000 ms. */
  pollMs?: number;
}

/** zod's output type has `prop: T | undefined`; the context types want absent keys. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export class EmulatorSource implements ContextSource {
  readonly name = 'emulator';
  private readonly listeners = new Listeners();
  private readonly once: LogOnce;
  private readonly pollMs: number;
  private radio: RadioContext[] = [];
  private motion: MotionContext | undefined;
  private last = '';
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;
  private reading: Promise<void> | undefined;

  constructor(private readonly opts: EmulatorSourceOptions) {
    this.once = new LogOnce(opts.logger, this.name);
    this.pollMs = opts.pollMs ?? 1000;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.readNow();
    this.schedule();
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      void this.readNow()
        .catch((e: unknown) => this.opts.logger.error({ source: this.name, err: (e as Error).message }, 'emulator context read failed'))
        .finally(() => this.schedule());
    }, this.pollMs);
    this.timer.unref();
  }

  readNow(): Promise<void> {
    this.reading ??= this.read().finally(() => { this.reading = undefined; });
    return this.reading;
  }

  snapshot(): Partial<ContextSnapshot> {
    const out: Partial<ContextSnapshot> = { radio: this.radio.map((r) => ({ ...r })) };
    if (this.motion) out.motion = { ...this.motion };
    return out;
  }

  onChange(listener: () => void): () => void {
    return this.listeners.add(listener);
  }

  get problems(): string[] {
    return this.once.problems;
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.reading;
  }

  private async read(): Promise<void> {
    const f = this.opts.file;
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch (e) {
      this.once.problem('read', `emulator context file ${f} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): no emulated context until it appears`);
      return;
    }
    this.once.resolved('read', `emulator context file ${f} is readable`);
    if (text === this.last) return;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      this.once.problem('format', `emulator context file ${f} is not JSON (${(e as Error).message}): ignored`);
      return;
    }
    const r = fileSchema.safeParse(json);
    if (!r.success) {
      const first = r.error.issues[0];
      this.once.problem('format', `emulator context file ${f}: ${first ? `${first.path.join('.') || '(top)'}: ${first.message}` : 'invalid'}; ignored`);
      return;
    }
    this.once.resolved('format');
    this.last = text;
    const known = new Set(this.opts.carriers);
    const unknown = r.data.radio.filter((x) => !known.has(x.carrier)).map((x) => x.carrier);
    if (unknown.length > 0) this.once.problem('unknown', `emulator context file ${f} names carriers the edge does not have (${unknown.join(', ')}): ignored`);
    this.radio = r.data.radio.filter((x) => known.has(x.carrier)).map((x) => defined(x) as RadioContext);
    this.motion = r.data.motion ? (defined(r.data.motion) as MotionContext) : undefined;
    this.listeners.emit((e) => this.opts.logger.error({ err: (e as Error).message }, 'context listener failed'));
  }
}
