// The one error type of the control plane, on both sides: on the server a handler throws it to
// refuse a call with a chosen gRPC status; on the client every failure arrives as one.
import { status as GrpcStatus } from '@grpc/grpc-js';

/** Name of a gRPC status code, e.g. 16 -> "UNAUTHENTICATED". */
export function statusName(code: number): string {
  return GrpcStatus[code] ?? `STATUS_${code}`;
}

export class ControlError extends Error {
  /** gRPC status code (see `status` of @grpc/grpc-js). */
  readonly code: number;
  /** The reason alone, without the prefix that `message` carries (sent as gRPC status details). */
  readonly details: string;

  constructor(code: number, details: string, message?: string) {
    super(message ?? `${statusName(code)}: ${details}`);
    this.name = 'ControlError';
    this.code = code;
    this.details = details;
  }
}
