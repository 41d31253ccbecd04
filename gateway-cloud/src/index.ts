// @braid/gateway-cloud public surface.
export { CloudGateway } from './cloud.js';
export { AddressPool } from './address-pool.js';
export { egressScript, installEgress, removeEgress } from './egress.js';
export { ReplicaForwarder, RelayedPeerPath, FrameKind, frameHeader, parseFrame, type Endpoint as ForwardEndpoint } from './forward.js';
export { startCluster, type Cluster } from './cluster.js';
