// What the fleet derives: policy overlays, in the shape of the policy documents of
// gateway-core/src/policy (a structural subset of its PolicyOverlay), and where they go. The
// PolicyStore of src/policy has this setOverlay signature; until the cloud wires one in, any sink
// with it (a recorder in tests and the bench) receives them.

export type FleetCarrierTier = 'primary' | 'secondary' | 'backup' | 'never';

export interface FleetOverlay {
  carriers?: Record<string, { tier?: FleetCarrierTier }>;
  schedule?: { beta?: number; retransmitF?: number };
}

export interface OverlaySink {
  /** Set, or with undefined remove, the overlay `source` derived for `edgeId`. */
  setOverlay(edgeId: string, source: string, overlay: FleetOverlay | undefined, opts?: { ttlMs?: number }): Promise<void>;
}

/** Overlay sources, one per rule (the policy store keeps one overlay per edge and source). */
export const FLEET_SOURCES = {
  degradation: 'fleet.degradation',
  speed: 'fleet.speed',
  cell: 'fleet.cell',
} as const;

/** A derived overlay with the reasons behind it (for logs, events and the admin view). */
export interface Derived {
  overlay: FleetOverlay | undefined;
  reasons: string[];
}

/** Keeps the overlays last sent to a sink in memory: the bench, tests and a cloud without a policy store use it. */
export class RecordingSink implements OverlaySink {
  readonly current = new Map<string, Map<string, FleetOverlay>>();
  readonly log: { atMs: number; edgeId: string; source: string; overlay: FleetOverlay | undefined }[] = [];

  constructor(private readonly maxLog = 1000) {}

  async setOverlay(edgeId: string, source: string, overlay: FleetOverlay | undefined): Promise<void> {
    let m = this.current.get(edgeId);
    if (!m) this.current.set(edgeId, (m = new Map()));
    if (overlay) m.set(source, overlay);
    else m.delete(source);
    this.log.push({ atMs: Date.now(), edgeId, source, overlay });
    if (this.log.length > this.maxLog) this.log.shift();
  }

  get(edgeId: string, source: string): FleetOverlay | undefined {
    return this.current.get(edgeId)?.get(source);
  }
}
