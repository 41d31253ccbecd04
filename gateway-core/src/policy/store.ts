// Where the cloud keeps policy: the operator's global policy, per-edge overrides, and overlays
// that cloud-side intelligence derives (e.g. "demote lte-b on edge-7", "protect real-time
// traffic harder at >= 160 km/h"). Behind an interface so that where the state lives across
// replicas stays the deployment's decision (a file on a volume here; a ConfigMap or a database
// elsewhere). Reads are synchronous from memory (the policy stream reads on every change);
// writes resolve once the change is durable.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { mergeAll } from './merge.js';
import { canonicalJson, parsePolicy, PolicyValidationError, type Policy, type PolicyInput, type PolicyOverlay } from './model.js';

/** Overlays with this edge id apply to every edge (what one edge taught is offered to the others). */
export const ALL_EDGES = '*';

export interface OverlayEntry {
  /** Who derived it, e.g. "fleet.degradation" or "fleet.speed"; one overlay per (edge, source). */
  source: string;
  overlay: PolicyOverlay;
  /** Unix ms; the overlay stops applying after this (derived knowledge goes stale). */
  expiresAtMs?: number | undefined;
  updatedAtMs: number;
}

export interface EffectivePolicy {
  /** Increases whenever anything that makes up this edge's policy changes; never reused. */
  version: number;
  policy: Policy;
  /** SHA-256 of the canonical JSON of `policy`: equal policies, equal hash. */
  hash: string;
  /** What it is made of, lowest first: "global@3", "edge@7", "overlay:fleet.speed@9". */
  sources: string[];
}

export interface StoredDocument {
  policy: PolicyInput;
  /** The store revision at which it was last written. */
  revision: number;
  updatedAtMs: number;
}

export interface OverlayOptions {
  /** The overlay applies for this long from now; default: until replaced or removed. */
  ttlMs?: number;
}

export interface PolicyStore {
  /** The operator's policy for all edges (undefined: built-in defaults). */
  global(): StoredDocument | undefined;
  /** Replace the global policy; throws PolicyValidationError (nothing stored) when invalid. */
  setGlobal(policy: unknown): Promise<StoredDocument>;
  /** A per-edge override (a partial policy over the global one), if any. */
  edgeOverride(edgeId: string): StoredDocument | undefined;
  /** Set (or with undefined, remove) an edge's override; refused like setGlobal when the result is invalid. */
  setEdgeOverride(edgeId: string, override: PolicyOverlay | undefined): Promise<void>;
  /**
   * Set (or with undefined, remove) the overlay `source` derived for `edgeId` (ALL_EDGES: every
   * edge). Refused with PolicyValidationError when it would make that edge's policy invalid.
   */
  setOverlay(edgeId: string, source: string, overlay: PolicyOverlay | undefined, opts?: OverlayOptions): Promise<void>;
  /** The overlays in force for `edgeId` (its own and ALL_EDGES), in the order they apply. */
  overlays(edgeId: string): OverlayEntry[];
  /** Global + override + overlays for one edge, validated. */
  effective(edgeId: string): EffectivePolicy;
  /**
   * Called after every change with the edge it concerns (ALL_EDGES when it concerns all).
   * Returns the unsubscribe function.
   */
  onChange(listener: (edgeId: string) => void): () => void;
  close(): Promise<void>;
}

interface StateFile {
  format: 'braid.policy-store.v1';
  revision: number;
  global?: StoredDocument | undefined;
  edges: Record<string, StoredDocument>;
  overlays: Record<string, Record<string, OverlayEntry & { revision: number }>>;
  /** The revision of the last change concerning each edge (ALL_EDGES: all of them); removals count. */
  touched: Record<string, number>;
}

const EDGE_ID_RE = /^(\*|[A-Za-z0-9._:-]{1,128})$/;
const SOURCE_RE = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * The policy store of one cloud process, optionally persisted to a JSON file (written to a
 * temporary file and renamed, so a crash leaves the old or the new state, never half of one).
 */
export class FilePolicyStore implements PolicyStore {
  private state: StateFile = { format: 'braid.policy-store.v1', revision: 0, edges: {}, overlays: {}, touched: {} };
  private readonly listeners = new Set<(edgeId: string) => void>();
  private writing: Promise<void> = Promise.resolve();
  private expiryTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly file: string | undefined, private readonly now: () => number) {}

  /** Opens (or creates) the store; `file` undefined keeps it in memory only. */
  static async open(file?: string, now: () => number = Date.now): Promise<FilePolicyStore> {
    const s = new FilePolicyStore(file, now);
    if (file) await s.load(file);
    s.scheduleExpiry();
    return s;
  }

  private async load(file: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    let doc: StateFile;
    try {
      doc = JSON.parse(text) as StateFile;
    } catch (e) {
      throw new Error(`policy state file ${file} is not JSON (${(e as Error).message}); move it away to start empty`);
    }
    if (doc.format !== 'braid.policy-store.v1' || typeof doc.revision !== 'number') {
      throw new Error(`policy state file ${file} is not a braid policy store (format ${String(doc.format)})`);
    }
    this.state = { format: doc.format, revision: doc.revision, global: doc.global, edges: doc.edges ?? {}, overlays: doc.overlays ?? {}, touched: doc.touched ?? {} };
  }

  global(): StoredDocument | undefined {
    return this.state.global;
  }

  async setGlobal(policy: unknown): Promise<StoredDocument> {
    parsePolicy(policy, 'global policy');
    const doc: StoredDocument = { policy: structuredClone(policy) as PolicyInput, revision: this.state.revision + 1, updatedAtMs: this.now() };
    // Every edge's policy must stay valid with the new global policy under its override and overlays.
    this.checkEdges((edgeId) => this.layers(edgeId, { global: doc }));
    this.state.revision = doc.revision;
    this.state.global = doc;
    await this.commit(ALL_EDGES);
    return doc;
  }

  edgeOverride(edgeId: string): StoredDocument | undefined {
    return this.state.edges[edgeId];
  }

  async setEdgeOverride(edgeId: string, override: PolicyOverlay | undefined): Promise<void> {
    checkEdgeId(edgeId, false);
    if (override === undefined) {
      if (!this.state.edges[edgeId]) return;
      delete this.state.edges[edgeId];
    } else {
      const doc: StoredDocument = { policy: structuredClone(override) as PolicyInput, revision: this.state.revision + 1, updatedAtMs: this.now() };
      parsePolicy(mergeAll(this.layers(edgeId, { edge: doc }).map((l) => l.doc)), `policy of edge ${edgeId}`);
      this.state.edges[edgeId] = doc;
    }
    this.state.revision++;
    await this.commit(edgeId);
  }

  async setOverlay(edgeId: string, source: string, overlay: PolicyOverlay | undefined, opts: OverlayOptions = {}): Promise<void> {
    checkEdgeId(edgeId, true);
    if (!SOURCE_RE.test(source)) throw new PolicyValidationError([{ path: 'source', message: `overlay source "${source}" must be 1-64 chars of A-Z a-z 0-9 . _ : -` }], 'overlay');
    const mine = this.state.overlays[edgeId] ?? {};
    if (overlay === undefined) {
      if (!mine[source]) return;
      delete mine[source];
    } else {
      if (opts.ttlMs !== undefined && !(opts.ttlMs > 0)) throw new RangeError(`overlay ttlMs must be positive, got ${opts.ttlMs}`);
      const now = this.now();
      const entry = { source, overlay: structuredClone(overlay), updatedAtMs: now, revision: this.state.revision + 1, ...(opts.ttlMs ? { expiresAtMs: now + opts.ttlMs } : {}) };
      const trial = { ...mine, [source]: entry };
      if (edgeId === ALL_EDGES) this.checkEdges((e) => this.layers(e, { overlays: { [ALL_EDGES]: trial } }));
      else parsePolicy(mergeAll(this.layers(edgeId, { overlays: { [edgeId]: trial } }).map((l) => l.doc)), `overlay ${source} for edge ${edgeId}`);
      mine[source] = entry;
    }
    this.state.overlays[edgeId] = mine;
    this.state.revision++;
    await this.commit(edgeId);
  }

  overlays(edgeId: string): OverlayEntry[] {
    return this.overlayEntries(edgeId, this.state.overlays).map(({ source, overlay, expiresAtMs, updatedAtMs }) => ({ source, overlay, expiresAtMs, updatedAtMs }));
  }

  effective(edgeId: string): EffectivePolicy {
    const layers = this.layers(edgeId);
    const policy = parsePolicy(mergeAll(layers.map((l) => l.doc)), `policy of edge ${edgeId}`);
    return {
      version: Math.max(0, ...layers.map((l) => l.revision), this.state.touched[ALL_EDGES] ?? 0, this.state.touched[edgeId] ?? 0),
      policy,
      hash: createHash('sha256').update(canonicalJson(policy)).digest('hex'),
      sources: layers.map((l) => `${l.name}@${l.revision}`),
    };
  }

  onChange(listener: (edgeId: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    clearTimeout(this.expiryTimer);
    this.listeners.clear();
    await this.writing;
  }

  // ---- internals -----------------------------------------------------------------------------

  /** Layers of one edge's policy, lowest first, optionally with trial replacements. */
  private layers(edgeId: string, trial: { global?: StoredDocument; edge?: StoredDocument; overlays?: StateFile['overlays'] } = {}):
    { name: string; doc: Record<string, unknown>; revision: number }[] {
    const out: { name: string; doc: Record<string, unknown>; revision: number }[] = [];
    const g = trial.global ?? this.state.global;
    if (g) out.push({ name: 'global', doc: g.policy as Record<string, unknown>, revision: g.revision });
    const e = trial.edge ?? this.state.edges[edgeId];
    if (e) out.push({ name: 'edge', doc: e.policy as Record<string, unknown>, revision: e.revision });
    const overlays = { ...this.state.overlays, ...trial.overlays };
    for (const o of this.overlayEntries(edgeId, overlays)) out.push({ name: `overlay:${o.source}`, doc: o.overlay as Record<string, unknown>, revision: o.revision });
    return out;
  }

  /**
   * Fleet-wide overlays first, then the edge's own; by source name within each (deterministic).
   * Expired overlays are removed by the expiry timer (which bumps the version), not filtered here:
   * otherwise the content could change while the version stays the same.
   */
  private overlayEntries(edgeId: string, overlays: StateFile['overlays']): (OverlayEntry & { revision: number })[] {
    const pick = (id: string) => Object.values(overlays[id] ?? {})
      .sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : 0));
    return edgeId === ALL_EDGES ? pick(ALL_EDGES) : [...pick(ALL_EDGES), ...pick(edgeId)];
  }

  private checkEdges(layersOf: (edgeId: string) => { doc: Record<string, unknown> }[]): void {
    const ids = new Set([ALL_EDGES, ...Object.keys(this.state.edges), ...Object.keys(this.state.overlays).filter((k) => k !== ALL_EDGES)]);
    for (const id of ids) parsePolicy(mergeAll(layersOf(id).map((l) => l.doc)), id === ALL_EDGES ? 'policy' : `policy of edge ${id}`);
  }

  private async commit(edgeId: string): Promise<void> {
    this.state.touched[edgeId] = this.state.revision;
    this.scheduleExpiry();
    const text = JSON.stringify(this.state, null, 1);
    if (this.file) {
      const file = this.file;
      // Writes are serialised: a later state never lands before an earlier one.
      this.writing = this.writing.catch(() => undefined).then(async () => {
        await mkdir(dirname(file), { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        await writeFile(tmp, text, { mode: 0o600 });
        await rename(tmp, file);
      });
      await this.writing;
    }
    for (const l of this.listeners) l(edgeId);
  }

  /** Wakes at the next overlay expiry: removes what expired (a change, with a new version) and tells watchers. */
  private scheduleExpiry(): void {
    clearTimeout(this.expiryTimer);
    const times = Object.values(this.state.overlays).flatMap((byId) => Object.values(byId).flatMap((o) => (o.expiresAtMs === undefined ? [] : [o.expiresAtMs])));
    if (times.length === 0) return;
    const delay = Math.min(2 ** 31 - 1, Math.max(1, Math.min(...times) - this.now() + 1));
    this.expiryTimer = setTimeout(() => void this.expire().catch(() => undefined), delay);
    this.expiryTimer.unref();
  }

  private async expire(): Promise<void> {
    const now = this.now();
    for (const [edgeId, byId] of Object.entries(this.state.overlays)) {
      const gone = Object.values(byId).filter((o) => o.expiresAtMs !== undefined && o.expiresAtMs <= now);
      if (gone.length === 0) continue;
      for (const o of gone) delete byId[o.source];
      this.state.revision++;
      await this.commit(edgeId);
    }
    this.scheduleExpiry();
  }
}

function checkEdgeId(edgeId: string, allowAll: boolean): void {
  if (!EDGE_ID_RE.test(edgeId) || (!allowAll && edgeId === ALL_EDGES)) {
    throw new PolicyValidationError([{ path: 'edgeId', message: `"${edgeId.slice(0, 40)}" is not an edge id (1-128 chars of A-Z a-z 0-9 . _ : -${allowAll ? ", or * for all" : ''})` }], 'edge id');
  }
}
