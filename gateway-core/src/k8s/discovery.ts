// Cloud replica discovery: who the other replicas of this cloud are, kept current.
//
//  - EndpointSliceDiscovery: list + watch the EndpointSlices of the headless Service (the chart's
//    RBAC grants exactly list/watch on endpointslices in the release namespace). A replica that
//    goes away is gone from the list as soon as its pod is marked terminating or not ready.
//  - DnsDiscovery: the headless Service's A records, polled. Works without API access (RBAC
//    off, or outside Kubernetes with any DNS name listing the replicas).
//  - StaticDiscovery: a fixed list from configuration.
//
// createReplicaDiscovery() picks the first that works, in that order, and falls back at run
// time when the API cannot be reached or refuses (403): a gateway never fails to start because
// discovery is unavailable.
import { resolve4 } from 'node:dns/promises';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { silentLogger, type Logger } from '../log.js';
import { type CloudReplica, replicasFromEndpointSlices, sameReplicas, serviceSelector, type SliceOptions } from './endpoint-slices.js';

export interface ReplicaDiscovery {
  /** Which mechanism is answering ("endpointslices", "dns", "static"). */
  readonly kind: string;
  start(): Promise<void>;
  stop(): void;
  /** The replicas known now, sorted by name. */
  replicas(): CloudReplica[];
  /** Called with the new list whenever it changes. Returns an unsubscribe function. */
  onChange(cb: (replicas: CloudReplica[]) => void): () => void;
}

abstract class BaseDiscovery implements ReplicaDiscovery {
  abstract readonly kind: string;
  protected current: CloudReplica[] = [];
  private readonly listeners = new Set<(r: CloudReplica[]) => void>();
  abstract start(): Promise<void>;
  abstract stop(): void;
  replicas(): CloudReplica[] {
    return [...this.current];
  }
  onChange(cb: (r: CloudReplica[]) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }
  protected publish(next: CloudReplica[]): void {
    if (sameReplicas(this.current, next)) return;
    this.current = next;
    for (const cb of this.listeners) cb(this.replicas());
  }
}

// ---- static -----------------------------------------------------------------------------------

export class StaticDiscovery extends BaseDiscovery {
  readonly kind = 'static';
  constructor(private readonly list: readonly { name?: string; address: string; dataPort?: number }[]) {
    super();
  }
  start(): Promise<void> {
    this.publish(this.list.map((r) => ({
      name: r.name ?? r.address, address: r.address, dataPort: r.dataPort, nodeName: undefined, zone: undefined, ready: true, terminating: false,
    })).sort((a, b) => (a.name < b.name ? -1 : 1)));
    return Promise.resolve();
  }
  stop(): void {}
}

// ---- DNS --------------------------------------------------------------------------------------

export type Resolve4 = (name: string) => Promise<string[]>;

export class DnsDiscovery extends BaseDiscovery {
  readonly kind = 'dns';
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly name: string,
    private readonly opts: { dataPort?: number; intervalMs?: number; resolve?: Resolve4; log?: Logger } = {},
  ) {
    super();
  }
  /** Resolves once; throws when the name does not resolve (so a fallback chain can move on). */
  async start(): Promise<void> {
    await this.poll();
    this.timer = setInterval(() => {
      this.poll().catch((e: Error) => this.opts.log?.warn({ name: this.name, err: e.message }, 'replica DNS lookup failed; keeping the last list'));
    }, this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }
  stop(): void {
    clearInterval(this.timer);
  }
  private async poll(): Promise<void> {
    const ips = await (this.opts.resolve ?? resolve4)(this.name);
    // A headless Service answers with the ready pods only.
    this.publish([...new Set(ips)].sort().map((address) => ({
      name: address, address, dataPort: this.opts.dataPort, nodeName: undefined, zone: undefined, ready: true, terminating: false,
    })));
  }
}

// ---- EndpointSlices -----------------------------------------------------------------------------

export type WatchPhase = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** The two API calls discovery makes. The real one is clientNodeEndpointSliceSource(); tests replay recorded objects. */
export interface EndpointSliceSource {
  list(namespace: string, labelSelector: string): Promise<{ items: V1EndpointSlice[]; resourceVersion: string | undefined }>;
  /** Streams changes after resourceVersion; `done` is called once when the stream ends (err on failure). */
  watch(
    namespace: string, labelSelector: string, resourceVersion: string | undefined,
    onEvent: (phase: WatchPhase, slice: V1EndpointSlice) => void, done: (err?: Error) => void,
  ): Promise<{ abort(): void }>;
}

export interface EndpointSliceDiscoveryOptions extends SliceOptions {
  namespace: string;
  /** The headless Service (the chart: <release>-braid-cloud-peers; env BRAID_PEERS_SERVICE). */
  service: string;
  /** Delay before re-listing after the watch ends or fails. */
  rewatchMs?: number;
  log?: Logger;
}

export class EndpointSliceDiscovery extends BaseDiscovery {
  readonly kind = 'endpointslices';
  private readonly slices = new Map<string, V1EndpointSlice>();
  private watchHandle: { abort(): void } | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly log: Logger;

  constructor(private readonly source: EndpointSliceSource, private readonly opts: EndpointSliceDiscoveryOptions) {
    super();
    this.log = opts.log ?? silentLogger;
  }

  /** Lists once (throws when the API is unreachable or refuses), then watches. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.listAndWatch();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.watchHandle?.abort();
    this.watchHandle = undefined;
  }

  private async listAndWatch(): Promise<void> {
    const selector = serviceSelector(this.opts.service);
    const { items, resourceVersion } = await this.source.list(this.opts.namespace, selector);
    this.slices.clear();
    for (const s of items) this.slices.set(sliceKey(s), s);
    this.recompute();
    if (this.stopped) return;
    this.watchHandle = await this.source.watch(this.opts.namespace, selector, resourceVersion, (phase, slice) => {
      if (phase === 'ADDED' || phase === 'MODIFIED') this.slices.set(sliceKey(slice), slice);
      else if (phase === 'DELETED') this.slices.delete(sliceKey(slice));
      else return;
      this.recompute();
    }, (err) => {
      this.watchHandle = undefined;
      if (this.stopped) return;
      // Watches end routinely (server timeouts, 410 Gone): list again, keep the last view meanwhile.
      if (err) this.log.warn({ err: err.message }, 'EndpointSlice watch ended; listing again');
      this.retry = setTimeout(() => {
        this.listAndWatch().catch((e: Error) => {
          this.log.warn({ err: e.message }, 'EndpointSlice list failed; keeping the last replica list');
          this.retry = setTimeout(() => void this.listAndWatch().catch(() => undefined), (this.opts.rewatchMs ?? 1000) * 5);
        });
      }, this.opts.rewatchMs ?? 1000);
    });
  }

  private recompute(): void {
    this.publish(replicasFromEndpointSlices([...this.slices.values()], this.opts));
  }
}

function sliceKey(s: V1EndpointSlice): string {
  return `${s.metadata?.namespace ?? ''}/${s.metadata?.name ?? ''}`;
}

// ---- choosing one ---------------------------------------------------------------------------

export interface CreateDiscoveryOptions {
  /** An EndpointSlice source (the API); absent outside a cluster. */
  source?: EndpointSliceSource;
  namespace?: string;
  /** Headless Service name: used for EndpointSlices and, as `<service>.<namespace>.svc`, for DNS. */
  service?: string;
  /** Host name whose A records list the replicas; default derived from service and namespace. */
  dnsName?: string;
  staticReplicas?: { name?: string; address: string; dataPort?: number }[];
  dataPort?: number;
  resolve?: Resolve4;
  log?: Logger;
}

/**
 * Starts the first discovery that works: EndpointSlices (when a source and service are given),
 * then DNS, then the static list (possibly empty: a single replica needs no peers).
 */
export async function createReplicaDiscovery(o: CreateDiscoveryOptions): Promise<ReplicaDiscovery> {
  const log = o.log ?? silentLogger;
  if (o.source && o.service && o.namespace) {
    const d = new EndpointSliceDiscovery(o.source, { namespace: o.namespace, service: o.service, log });
    try {
      await d.start();
      return d;
    } catch (e) {
      d.stop();
      log.warn({ err: (e as Error).message }, 'EndpointSlice discovery unavailable; falling back to DNS');
    }
  }
  const dnsName = o.dnsName ?? (o.service && o.namespace ? `${o.service}.${o.namespace}.svc` : undefined);
  if (dnsName) {
    const d = new DnsDiscovery(dnsName, { dataPort: o.dataPort, resolve: o.resolve, log });
    try {
      await d.start();
      return d;
    } catch (e) {
      d.stop();
      log.warn({ name: dnsName, err: (e as Error).message }, 'DNS discovery unavailable; using the static replica list');
    }
  }
  const d = new StaticDiscovery(o.staticReplicas ?? []);
  await d.start();
  return d;
}
