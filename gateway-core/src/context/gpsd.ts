// S2-5 context from gpsd: the vehicle's position and ground speed. Connects to gpsd's JSON
// socket (TCP 2947), asks for reports with ?WATCH={"enable":true,"json":true} and keeps the
// latest TPV (time-position-velocity) report: lat/lon in degrees, speed in m/s (turned into
// km/h). gpsd restarting or not running yet: the source reconnects with a growing delay
// (0.5 s .. 5 s) and says so once; the last fix stays, with its time, for the consumer to judge.
import { createConnection, type Socket } from 'node:net';
import type { Logger } from '../log.js';
import { Listeners } from './listeners.js';
import { LogOnce } from './log-once.js';
import type { ContextSnapshot, ContextSource, MotionContext } from './types.js';

export interface GpsdOptions {
  host: string;
  port: number;
  logger: Logger;
  /** First reconnect delay and its cap, ms (defaults 500 and 5000). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  now?: () => number;
}

const WATCH = '?WATCH={"enable":true,"json":true}\n';
/** A gpsd host that drops SYNs would otherwise hold a connection attempt for minutes. */
const CONNECT_TIMEOUT_MS = 5000;
/** A line longer than this is not a gpsd report (gpsd's own limit is about 10 KB for SKY). */
const MAX_LINE = 64 * 1024;

export class GpsdSource implements ContextSource {
  readonly name = 'gpsd';
  private readonly listeners = new Listeners();
  private readonly once: LogOnce;
  private readonly now: () => number;
  private readonly minMs: number;
  private readonly maxMs: number;
  private socket: Socket | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private delayMs: number;
  private running = false;
  private buf = '';
  private motion: MotionContext | undefined;
  /** Reports received (TPV or not) and lines that were not gpsd JSON. */
  readonly counters = { connects: 0, reports: 0, tpv: 0, badLines: 0 };

  constructor(private readonly opts: GpsdOptions) {
    this.once = new LogOnce(opts.logger, this.name);
    this.now = opts.now ?? Date.now;
    this.minMs = opts.reconnectMinMs ?? 500;
    this.maxMs = opts.reconnectMaxMs ?? 5000;
    this.delayMs = this.minMs;
  }

  /** Starts connecting; does not wait for gpsd (it may come up later). */
  start(): Promise<void> {
    if (!this.running) {
      this.running = true;
      this.connect();
    }
    return Promise.resolve();
  }

  snapshot(): Partial<ContextSnapshot> {
    return this.motion ? { motion: { ...this.motion } } : {};
  }

  onChange(listener: () => void): () => void {
    return this.listeners.add(listener);
  }

  get connected(): boolean {
    return this.socket !== undefined && !this.socket.connecting && !this.socket.destroyed;
  }

  stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    const s = this.socket;
    this.socket = undefined;
    if (!s || s.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      s.once('close', () => resolve());
      s.destroy();
    });
  }

  private connect(): void {
    const { host, port } = this.opts;
    const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const s = createConnection({ host, port });
    this.socket = s;
    this.buf = '';
    s.setEncoding('utf8');
    s.setNoDelay(true);
    s.setTimeout(CONNECT_TIMEOUT_MS, () => s.destroy(new Error(`no answer within ${CONNECT_TIMEOUT_MS} ms`)));
    s.on('connect', () => {
      s.setTimeout(0);
      this.counters.connects++;
      this.delayMs = this.minMs;
      this.once.resolved('connect', `connected to gpsd at ${where}`);
      s.write(WATCH);
    });
    s.on('data', (chunk: string) => this.onData(chunk));
    s.on('error', (e: NodeJS.ErrnoException) => {
      this.once.problem('connect', `gpsd at ${where} unreachable (${e.code ?? e.message}): no position or speed until it answers; retrying`);
    });
    s.on('close', () => {
      if (this.socket !== s) return;
      this.socket = undefined;
      if (!this.running) return;
      // A close after a good connection (gpsd restarted) is a problem too, logged once; a
      // refused connection was already said by 'error'.
      if (s.bytesRead > 0) this.once.problem('connect', `gpsd at ${where} closed the connection: reconnecting`);
      this.timer = setTimeout(() => this.connect(), this.delayMs);
      this.timer.unref();
      this.delayMs = Math.min(this.maxMs, this.delayMs * 2);
    });
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line) this.onLine(line);
    }
    if (this.buf.length > MAX_LINE) {
      this.counters.badLines++;
      this.once.problem('line', `gpsd sent a line of more than ${MAX_LINE} bytes: dropped`);
      this.buf = '';
    }
  }

  private onLine(line: string): void {
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch {
      this.counters.badLines++;
      this.once.problem('line', `gpsd sent a line that is not JSON, dropped (counted): ${line.slice(0, 80)}`);
      return;
    }
    if (typeof r !== 'object' || r === null) return;
    this.counters.reports++;
    const o = r as Record<string, unknown>;
    if (o.class !== 'TPV') return;
    this.counters.tpv++;
    // mode: 0 unknown, 1 no fix, 2 2D, 3 3D. Without a fix the report has no position.
    const mode = typeof o.mode === 'number' ? o.mode : 0;
    if (mode < 2) return;
    const m: MotionContext = { atMs: this.now() };
    if (typeof o.lat === 'number' && Number.isFinite(o.lat)) m.latitude = o.lat;
    if (typeof o.lon === 'number' && Number.isFinite(o.lon)) m.longitude = o.lon;
    if (typeof o.speed === 'number' && Number.isFinite(o.speed)) m.speedKmh = o.speed * 3.6;
    if (m.latitude === undefined && m.speedKmh === undefined) return;
    this.motion = m;
    this.listeners.emit((e) => this.opts.logger.error({ err: (e as Error).message }, 'context listener failed'));
  }
}
