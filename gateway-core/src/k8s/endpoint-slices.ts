// Cloud replicas from the EndpointSlices of the cloud's headless Service: which pods exist, at
// which address, and whether they may be handed new sessions. Pure: tested with recorded API
// objects (test/k8s-fixtures), no API server needed.
import type { V1EndpointSlice } from '@kubernetes/client-node';

export interface CloudReplica {
  /** Pod name (targetRef), else the endpoint's hostname, else its address. */
  name: string;
  /** IPv4 address of the pod (what a pinned edge sends its data to). */
  address: string;
  /** The data-plane UDP port from the slice, when the slice names it. */
  dataPort: number | undefined;
  nodeName: string | undefined;
  zone: string | undefined;
  /**
   * May be given new sessions: ready, or (ready unknown) serving and not terminating. A
   * terminating replica keeps the sessions it has until they re-home but gets no new ones.
   */
  ready: boolean;
  terminating: boolean;
}

export interface SliceOptions {
  /** Name of the data-plane port in the Service (the chart names it "data"). */
  dataPortName?: string;
}

/**
 * Every IPv4 endpoint of the slices, one entry per address (slices of one Service can overlap
 * while the controller rebalances them; the ready view wins), sorted by name so that every
 * replica computes the same list from the same objects.
 */
export function replicasFromEndpointSlices(slices: readonly V1EndpointSlice[], opts: SliceOptions = {}): CloudReplica[] {
  const portName = opts.dataPortName ?? 'data';
  const byAddress = new Map<string, CloudReplica>();
  for (const slice of slices) {
    if (slice.addressType !== 'IPv4') continue;
    const port = slice.ports?.find((p) => p.name === portName && (p.protocol ?? 'TCP') === 'UDP')?.port;
    for (const ep of slice.endpoints ?? []) {
      const c = ep.conditions ?? {};
      const terminating = c.terminating === true;
      // Per the API: a nil ready means unknown and is to be read as ready.
      const ready = !terminating && (c.ready ?? c.serving ?? true);
      for (const address of ep.addresses ?? []) {
        const replica: CloudReplica = {
          name: ep.targetRef?.name ?? ep.hostname ?? address,
          address,
          dataPort: port,
          nodeName: ep.nodeName,
          zone: ep.zone,
          ready,
          terminating,
        };
        const prev = byAddress.get(address);
        if (!prev || (!prev.ready && replica.ready)) byAddress.set(address, replica);
      }
    }
  }
  return [...byAddress.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.address < b.address ? -1 : 1));
}

/** The label the EndpointSlice controller puts on every slice of a Service. */
export function serviceSelector(service: string): string {
  return `kubernetes.io/service-name=${service}`;
}

/** Two replica lists describe the same set (names, addresses, readiness). */
export function sameReplicas(a: readonly CloudReplica[], b: readonly CloudReplica[]): boolean {
  return a.length === b.length && a.every((r, i) => {
    const o = b[i];
    return o !== undefined && o.name === r.name && o.address === r.address && o.ready === r.ready && o.dataPort === r.dataPort;
  });
}
