// Kubernetes-facing logic of the gateways, behind interfaces (EndpointSliceSource, NodeSource):
// cloud replica discovery, session pinning, edge carrier metadata from node annotations. See
// docs/kubernetes.md.
export { type CloudReplica, type SliceOptions, replicasFromEndpointSlices, serviceSelector, sameReplicas } from './endpoint-slices.js';
export {
  type ReplicaDiscovery, type EndpointSliceSource, type WatchPhase, type Resolve4, type CreateDiscoveryOptions,
  type EndpointSliceDiscoveryOptions, StaticDiscovery, DnsDiscovery, EndpointSliceDiscovery, createReplicaDiscovery,
} from './discovery.js';
export {
  type NodeSource, type AnnotatedCarriers, type NodeCarrierResult, CARRIER_ANNOTATION_PREFIX, carriersFromNodeAnnotations,
  readNodeCarriers, apiErrorReason,
} from './node-carriers.js';
export {
  type DataEndpoint, pinnedDataEndpoint, rendezvousOwner, OWNER_TAG_BITS, ownerTag, taggedSessionId, sessionOwnerTag, sessionOwners,
} from './ownership.js';
export { type NodeCarrierOptions, withNodeCarriers } from './edge-carriers.js';
export { inCluster, podNamespace, inClusterKubeConfig, clientNodeEndpointSliceSource, clientNodeNodeSource } from './api.js';
