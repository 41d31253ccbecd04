// The gateway's event timeline: what happened to sessions and paths, newest last, in a bounded
// ring so a gateway that runs for months holds a fixed amount of it. The admin endpoint, the
// dashboard and the admin gRPC API read it; each event also becomes a short span (telemetry.ts).

export type EventKind =
  /** The edge applied, or rejected with the reason, a policy version from the cloud (issue 8). */
  | 'policy.applied'
  | 'policy.rejected'
  | 'session.established'
  | 'session.ended'
  | 'path.up'
  | 'path.down'
  | 'path.recovered'
  /** A decision of an S0 transport race (a candidate won, lost, failed; a re-race). */
  | 'path.race'
  /** A path's MTU, found by path MTU discovery, changed (path/pmtu.ts); carries the tunnel MTU. */
  | 'path.mtu';

export interface GatewayEvent {
  /** Increasing per gateway process, so a reader can ask for "everything after seq N". */
  seq: number;
  /** Unix time, milliseconds. */
  time: number;
  kind: EventKind;
  sessionId: number | null;
  /** Carrier / path name when the event concerns one path. */
  path: string | null;
  /** One human sentence. */
  message: string;
  attributes: Record<string, string | number | boolean>;
}

export type EventInput = Omit<GatewayEvent, 'seq' | 'time' | 'attributes' | 'sessionId' | 'path'> &
  Partial<Pick<GatewayEvent, 'time' | 'attributes' | 'sessionId' | 'path'>>;

export class EventLog {
  private readonly ring: GatewayEvent[] = [];
  private nextSeq = 1;
  private readonly listeners = new Set<(e: GatewayEvent) => void>();

  constructor(readonly capacity = 1000) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`event capacity must be a positive integer, got ${capacity}`);
  }

  record(input: EventInput): GatewayEvent {
    const e: GatewayEvent = {
      seq: this.nextSeq++,
      time: input.time ?? Date.now(),
      kind: input.kind,
      sessionId: input.sessionId ?? null,
      path: input.path ?? null,
      message: input.message,
      attributes: input.attributes ?? {},
    };
    this.ring.push(e);
    if (this.ring.length > this.capacity) this.ring.splice(0, this.ring.length - this.capacity);
    for (const l of this.listeners) l(e);
    return e;
  }

  /** Events with seq > `after`, oldest first, at most `limit` (the newest ones). */
  list(after = 0, limit = this.capacity): GatewayEvent[] {
    const out = this.ring.filter((e) => e.seq > after);
    return limit < out.length ? out.slice(out.length - limit) : out;
  }

  get size(): number {
    return this.ring.length;
  }

  /** Called for every new event; returns an unsubscribe function. */
  subscribe(fn: (e: GatewayEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
