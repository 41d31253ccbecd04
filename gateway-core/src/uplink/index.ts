// Telemetry up (edge -> cloud): braid.v1.TelemetryService client side and the shared message shapes.
export type * from './types.js';
export { TELEMETRY_SERVICE, telemetryServiceDefinition, reportMethod } from './proto.js';
export { TELEMETRY_LIMITS, validateReportRequest } from './validate.js';
export { CHANGE_THRESHOLDS, changeReason } from './change.js';
export { ReportQueue } from './queue.js';
export {
  DEFAULT_REPORTER, TelemetryReporter, type ReporterOptions, type ReporterSettings, type ReporterStats,
  type UplinkHandlers, type UplinkStream, type UplinkTransport,
} from './reporter.js';
export { grpcUplink, type GrpcUplinkOptions } from './grpc-stream.js';
export { buildSample, type SampleInput } from './sample.js';
export { startEdgeUplink, UPLINK_DROP_REASON, type EdgeUplink, type EdgeUplinkOptions } from './edge-uplink.js';
