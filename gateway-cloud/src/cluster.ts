// The cloud replica's place among its peers: who they are (discovery: the Kubernetes API's
// EndpointSlices, else DNS, else the configured list) and the forwarder that makes a session's
// paths meet at its owner. A cloud without an address of its own (no cluster.address, no
// POD_IP) runs alone, exactly as before.
import {
  clientNodeEndpointSliceSource, createReplicaDiscovery, inClusterKubeConfig, ownerTag, podNamespace,
  type CloudConfig, type DropCounters, type Logger, type ReplicaDiscovery, type UdpListener,
} from '@braid/gateway-core';
import { ReplicaForwarder, type Endpoint } from './forward.js';

export interface Cluster {
  selfAddress: string;
  /** Written into every session id this replica hands out. */
  tag: number;
  discovery: ReplicaDiscovery;
  forwarder: ReplicaForwarder;
  stop(): void;
}

export async function startCluster(
  cfg: CloudConfig, data: UdpListener, drops: DropCounters, log: Logger,
  deliver: (datagram: Buffer, edge: Endpoint, relay: string) => void,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Cluster | undefined> {
  const selfAddress = cfg.cluster.address ?? env.POD_IP ?? undefined;
  if (!selfAddress) return undefined;
  const kc = inClusterKubeConfig();
  const namespace = podNamespace(env);
  const service = env.BRAID_PEERS_SERVICE || undefined;
  const discovery = await createReplicaDiscovery({
    source: kc ? clientNodeEndpointSliceSource(kc) : undefined,
    namespace, service,
    dnsName: cfg.cluster.dnsName,
    staticReplicas: cfg.cluster.replicas.map((address) => ({ address })),
    log,
  });
  const forwarder = await ReplicaForwarder.open({ selfAddress, port: cfg.cluster.forwardPort, discovery, data, drops, log, deliver });
  const tag = ownerTag(selfAddress);
  const logList = (): void => log.info({ discovery: discovery.kind, self: selfAddress, replicas: discovery.replicas().map((r) => `${r.name}=${r.address}${r.ready ? '' : '(not ready)'}`) }, 'cloud replicas');
  logList();
  const unsubscribe = discovery.onChange(logList);
  return {
    selfAddress, tag, discovery, forwarder,
    stop() {
      unsubscribe();
      discovery.stop();
      forwarder.close();
    },
  };
}
