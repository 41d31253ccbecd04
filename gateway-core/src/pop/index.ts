// Multi-PoP selection (S2-13): see docs/multi-pop.md.
export { type PopMeasurement, type Choice, type SelectOptions, choosePop, totalRtt } from './select.js';
export { type Connect, type TargetDelay, type ProberOptions, DestinationProber, MAX_TARGETS, parseTarget, tcpConnectTime } from './probe.js';
export { POP_SERVICE, popService, PopClient, type PopClientOptions } from './service.js';
export {
  type PopEdgeGateway, type PopDestinationStatus, type PopStatus, type MultiPopDeps, MultiPopEdge, popEdgeConfig, popDevice, popTable,
} from './edge.js';
