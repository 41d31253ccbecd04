// TypeScript shapes of braid.v1 telemetry messages (proto/braid/v1/telemetry.proto) as
// @grpc/proto-loader presents them with the options of control/proto.ts (camelCase, longs as
// numbers, enums as strings). `optional` proto fields are absent when unknown.

export type PathStateValue = 'PATH_STATE_UNSPECIFIED' | 'PATH_STATE_PROBING' | 'PATH_STATE_UP' | 'PATH_STATE_DOWN';
export type CongestionModeValue = 'CONGESTION_MODE_UNSPECIFIED' | 'CONGESTION_MODE_WINDOW' | 'CONGESTION_MODE_PACED';

/** braid.v1.PathReport */
export interface PathReport {
  carrier: string;
  state: PathStateValue;
  transport: string;
  rttMs?: number | undefined;
  minRttMs?: number | undefined;
  s3DelayMs?: number | undefined;
  cwndBytes?: number | undefined;
  congestionMode: CongestionModeValue;
  lossRate: number;
  goodputMbps: number;
  queueBytes: number;
  txBytes: number;
  rxBytes: number;
}

/** braid.v1.CarrierReport */
export interface CarrierReport {
  carrier: string;
  operatorName: string;
  mcc: string;
  mnc: string;
  technology: string;
  rsrpDbm?: number | undefined;
  rsrqDb?: number | undefined;
  sinrDb?: number | undefined;
  cellId: string;
  radioAtUnixMs: number;
}

/** braid.v1.Motion */
export interface Motion {
  latitude?: number | undefined;
  longitude?: number | undefined;
  speedKmh?: number | undefined;
  atUnixMs: number;
}

/** braid.v1.TelemetryReport */
export interface TelemetryReport {
  seq: number;
  atUnixMs: number;
  sessionId: number;
  paths: PathReport[];
  carriers: CarrierReport[];
  motion?: Motion | null | undefined;
}

/** A report before the reporter numbers it. */
export type TelemetrySample = Omit<TelemetryReport, 'seq'>;

/** braid.v1.ReportRequest */
export interface ReportRequest {
  edgeId: string;
  bootId: string;
  reports: TelemetryReport[];
}

/** braid.v1.ReportResponse */
export interface ReportResponse {
  ackedSeq: number;
}
