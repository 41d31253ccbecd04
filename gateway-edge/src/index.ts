// @braid/gateway-edge public surface.
export { EdgeGateway, type EdgeStatus } from './edge.js';
export { installInterception, removeInterception, nftScript, planFrom, type InterceptionPlan } from './interception.js';
