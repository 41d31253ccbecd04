// braid.v1.TelemetryService on the cloud: one Report stream per edge, every batch validated,
// stored in the fleet and acknowledged. Refusals end the stream with a status and a reason
// (see telemetry.proto); nothing an edge sends can crash the process or grow memory unbounded.
import * as grpc from '@grpc/grpc-js';
import { ControlError, statusName } from '../control/errors.js';
import { peerIdentityOf } from '../control/server.js';
import type { ExtraService } from '../control/types.js';
import { silentLogger, type Logger } from '../log.js';
import { TELEMETRY_SERVICE, telemetryServiceDefinition } from '../uplink/proto.js';
import type { ReportResponse } from '../uplink/types.js';
import { validateReportRequest } from '../uplink/validate.js';
import type { Fleet } from './fleet.js';

export interface TelemetryServiceOptions {
  fleet: Fleet;
  /** Most edges reporting at once; one more is refused with RESOURCE_EXHAUSTED. */
  maxStreams?: number;
  logger?: Logger;
}

export interface TelemetryServiceStats {
  streams: number;
  batches: number;
  reports: number;
  /** Refusals by gRPC status name. */
  refused: Record<string, number>;
  /** Streams ended because a newer stream of the same edge arrived. */
  replaced: number;
}

export interface TelemetryServiceHandle {
  service: ExtraService;
  stats(): TelemetryServiceStats;
}

type Call = grpc.ServerDuplexStream<unknown, ReportResponse>;

export function telemetryService(o: TelemetryServiceOptions): TelemetryServiceHandle {
  const log = (o.logger ?? silentLogger).child({ component: 'telemetry-service' });
  const maxStreams = o.maxStreams ?? 4096;
  const streams = new Map<string, Call>();
  const counts = { batches: 0, reports: 0, replaced: 0 };
  const refused: Record<string, number> = {};

  function refuse(call: Call, code: number, details: string, edge: string): void {
    const name = statusName(code);
    refused[name] = (refused[name] ?? 0) + 1;
    log.warn({ edge, code: name, peer: call.getPeer() }, `telemetry stream refused: ${details}`);
    call.emit('error', { code, details });
  }

  function report(call: Call): void {
    let cn: string;
    try {
      cn = peerIdentityOf(call).commonName;
    } catch (e) {
      const err = e instanceof ControlError ? e : new ControlError(grpc.status.UNAUTHENTICATED, 'a trusted client certificate is required');
      refuse(call, err.code, err.details, '?');
      return;
    }
    if (!streams.has(cn) && streams.size >= maxStreams) {
      refuse(call, grpc.status.RESOURCE_EXHAUSTED, `this cloud already serves ${maxStreams} reporting edges`, cn);
      return;
    }
    const old = streams.get(cn);
    if (old) {
      counts.replaced++;
      old.emit('error', { code: grpc.status.ABORTED, details: 'replaced by a newer telemetry stream of the same edge' });
    }
    streams.set(cn, call);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      if (streams.get(cn) === call) streams.delete(cn);
    };
    call.on('data', (msg: unknown) => {
      if (done) return;
      const v = validateReportRequest(msg);
      if (!v.ok) {
        refuse(call, grpc.status.INVALID_ARGUMENT, `invalid ReportRequest: ${v.reason}`, cn);
        finish();
        return;
      }
      if (v.value.edgeId !== cn) {
        refuse(call, grpc.status.PERMISSION_DENIED, `edge id "${v.value.edgeId}" does not match its certificate (CN=${cn})`, cn);
        finish();
        return;
      }
      counts.batches++;
      counts.reports += v.value.reports.length;
      const r = o.fleet.ingest(cn, v.value.bootId, v.value.reports);
      call.write({ ackedSeq: r.ackedSeq });
    });
    call.on('end', () => {
      finish();
      call.end();
    });
    call.on('cancelled', finish);
    call.on('error', finish);
    call.on('close', finish);
  }

  return {
    service: {
      name: TELEMETRY_SERVICE,
      definition: telemetryServiceDefinition(),
      implementation: { Report: report as grpc.handleBidiStreamingCall<unknown, ReportResponse> },
    },
    stats: () => ({ streams: streams.size, ...counts, refused: { ...refused } }),
  };
}
