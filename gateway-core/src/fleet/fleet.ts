// The cloud's fleet intelligence: stores what edges report (history.ts), derives overlays from it
// (rules.ts), hands changed overlays to the policy sink, and saves its state so that a restarted
// replica keeps its history, its acknowledgements and what it derived.
import { silentLogger, type Logger } from '../log.js';
import type { TelemetryReport } from '../uplink/types.js';
import { FleetHistory, type IngestResult } from './history.js';
import { FLEET_SOURCES, type Derived, type FleetOverlay, type OverlaySink } from './overlay.js';
import { cellRule, degradationRule, RULES, speedRule, type CellLesson } from './rules.js';
import type { FleetStateStore } from './store.js';

export interface FleetOptions {
  store: FleetStateStore;
  sink: OverlaySink;
  /** Samples kept per carrier of each edge. */
  samplesPerCarrier?: number;
  /** Save the state this often when it changed, ms (default 5000). */
  saveIntervalMs?: number;
  /** Derived overlays expire after this long unless re-derived, ms (stale knowledge must not stick). */
  overlayTtlMs?: number;
  logger?: Logger;
  now?: () => number;
}

export interface FleetStats {
  edges: number;
  batches: number;
  reportsStored: number;
  duplicates: number;
  gaps: number;
  overlaysSet: number;
  overlayErrors: number;
  saves: number;
  saveErrors: number;
}

export class Fleet {
  readonly history: FleetHistory;
  private readonly log: Logger;
  private readonly now: () => number;
  /** Last overlay given to the sink per edge and source, as JSON (only changes are sent). */
  private readonly sent = new Map<string, Map<string, string>>();
  /** cell -> what was learned there. */
  private readonly lessons = new Map<string, CellLesson>();
  /** cell -> edges whose carrier is on it now. */
  private readonly onCell = new Map<string, Set<string>>();
  /** "edge\0carrier" -> the cell it is on now. */
  private readonly cellOf = new Map<string, string>();
  private readonly demotedBy = new Map<string, Set<string>>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private dirty = false;
  private saving: Promise<void> | undefined;
  readonly stats: FleetStats = { edges: 0, batches: 0, reportsStored: 0, duplicates: 0, gaps: 0, overlaysSet: 0, overlayErrors: 0, saves: 0, saveErrors: 0 };
  /** Called after each overlay the sink accepted (the control-loop measurement listens here). */
  onOverlay: ((edgeId: string, source: string, overlay: FleetOverlay | undefined, reasons: string[]) => void) | undefined;

  constructor(private readonly opts: FleetOptions) {
    this.history = new FleetHistory(opts.samplesPerCarrier ?? 120);
    this.log = (opts.logger ?? silentLogger).child({ component: 'fleet' });
    this.now = opts.now ?? Date.now;
  }

  /** Loads the saved state (a corrupt one is logged and set aside, not fatal) and starts periodic saving. */
  async start(): Promise<void> {
    try {
      const doc = await this.opts.store.load();
      if (doc) {
        this.history.restore(doc);
        for (const [edge, bySource] of Object.entries(doc.overlays)) {
          this.sent.set(edge, new Map(Object.entries(bySource).map(([s, o]) => [s, JSON.stringify(o)])));
        }
        this.log.info({ edges: this.history.edges.size, savedAtMs: doc.savedAtMs }, 'fleet state restored');
      }
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'fleet state not restored; starting empty');
    }
    this.stats.edges = this.history.edges.size;
    const every = this.opts.saveIntervalMs ?? 5000;
    this.timer = setInterval(() => void this.save(), every);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.dirty = true;
    await this.save();
  }

  /** Saves now if anything changed since the last save. */
  async save(): Promise<void> {
    if (this.saving) return this.saving;
    if (!this.dirty) return;
    this.dirty = false;
    const overlays: Record<string, Record<string, unknown>> = {};
    for (const [edge, m] of this.sent) overlays[edge] = Object.fromEntries([...m].map(([s, j]) => [s, JSON.parse(j) as unknown]));
    const doc = this.history.toDocument(overlays, this.now());
    this.saving = this.opts.store.save(doc).then(
      () => { this.stats.saves++; },
      (e: unknown) => {
        this.stats.saveErrors++;
        this.dirty = true;
        this.log.error({ err: (e as Error).message }, 'fleet state not saved');
      },
    ).finally(() => { this.saving = undefined; });
    return this.saving;
  }

  /** Stores one validated batch of `edgeId` and re-derives its overlays. */
  ingest(edgeId: string, bootId: string, reports: readonly TelemetryReport[]): IngestResult {
    const r = this.history.ingest(edgeId, bootId, reports, this.now());
    this.stats.batches++;
    this.stats.reportsStored += r.stored;
    this.stats.duplicates += r.duplicates;
    this.stats.gaps += r.gaps;
    this.stats.edges = this.history.edges.size;
    if (this.stats.batches % 1000 === 0) this.prune();
    if (r.stored > 0) {
      this.dirty = true;
      this.evaluate(edgeId);
    }
    return r;
  }

  /** Forgets cell lessons past their memory and cells nobody is on, so these maps stay bounded along a route. */
  private prune(): void {
    const now = this.now();
    for (const [cell, l] of this.lessons) if (now - l.atMs > RULES.cellMemoryMs) this.lessons.delete(cell);
    for (const [cell, members] of this.onCell) if (members.size === 0) this.onCell.delete(cell);
  }

  private evaluate(edgeId: string): void {
    const e = this.history.edges.get(edgeId);
    if (!e) return;
    const now = this.now();
    // Which cells this edge's carriers are on now.
    for (const [name, ring] of e.carriers) {
      const cell = ring.newest()?.cell;
      const key = `${edgeId}\u0000${name}`;
      const was = this.cellOf.get(key);
      if (was === cell) continue;
      if (was) this.onCell.get(was)?.delete(key);
      if (cell) this.cellOf.set(key, cell);
      else this.cellOf.delete(key);
      if (cell) {
        let m = this.onCell.get(cell);
        if (!m) this.onCell.set(cell, (m = new Set()));
        m.add(key);
      }
    }
    const deg = degradationRule(e);
    this.offer(edgeId, FLEET_SOURCES.degradation, deg.derived);
    this.offer(edgeId, FLEET_SOURCES.speed, speedRule(e));
    const newlyDemoted: string[] = [];
    const before = this.demotedBy.get(edgeId) ?? new Set();
    for (const [name, why] of deg.demoted) {
      const cell = e.carriers.get(name)?.newest()?.cell;
      if (cell) this.lessons.set(cell, { edgeId, carrier: name, reason: why, atMs: now });
      if (!before.has(name) && cell) newlyDemoted.push(cell);
    }
    this.demotedBy.set(edgeId, new Set(deg.demoted.keys()));
    this.offer(edgeId, FLEET_SOURCES.cell, cellRule(edgeId, e, this.lessons, now, new Set(deg.demoted.keys())));
    // A new lesson is offered at once to the edges already on that cell.
    for (const cell of newlyDemoted) {
      for (const key of this.onCell.get(cell) ?? []) {
        const other = key.slice(0, key.indexOf('\u0000'));
        if (other === edgeId) continue;
        const oe = this.history.edges.get(other);
        if (oe) this.offer(other, FLEET_SOURCES.cell, cellRule(other, oe, this.lessons, now, this.demotedBy.get(other) ?? new Set()));
      }
    }
  }

  private offer(edgeId: string, source: string, d: Derived): void {
    let m = this.sent.get(edgeId);
    const json = d.overlay ? JSON.stringify(d.overlay) : undefined;
    if ((m?.get(source)) === json) return;
    if (!m) this.sent.set(edgeId, (m = new Map()));
    if (json === undefined) m.delete(source);
    else m.set(source, json);
    this.dirty = true;
    if (d.overlay) this.log.info({ edgeId, source, reasons: d.reasons }, 'fleet overlay derived');
    else this.log.info({ edgeId, source }, 'fleet overlay withdrawn');
    const ttl = this.opts.overlayTtlMs;
    this.opts.sink.setOverlay(edgeId, source, d.overlay, d.overlay && ttl ? { ttlMs: ttl } : undefined).then(
      () => {
        this.stats.overlaysSet++;
        this.onOverlay?.(edgeId, source, d.overlay, d.reasons);
      },
      (e: unknown) => {
        this.stats.overlayErrors++;
        // Forget it so that the next report retries.
        m.delete(source);
        this.log.error({ edgeId, source, err: (e as Error).message }, 'policy store refused a fleet overlay');
      },
    );
  }

  /** The overlays last derived for an edge (by source). */
  overlaysOf(edgeId: string): Record<string, FleetOverlay> {
    return Object.fromEntries([...(this.sent.get(edgeId) ?? [])].map(([s, j]) => [s, JSON.parse(j) as FleetOverlay]));
  }
}
