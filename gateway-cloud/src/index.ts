// @braid/gateway-cloud public surface.
export { CloudGateway } from './cloud.js';
export { AddressPool } from './address-pool.js';
export { egressScript, installEgress, removeEgress } from './egress.js';
