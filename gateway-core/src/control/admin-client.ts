// Calls to braid.v1.AdminService over mutual TLS (the `braid` CLI). Failures reject with a
// ControlError whose message says what went wrong in operator terms.
import * as grpc from '@grpc/grpc-js';
import { ControlError, statusName } from './errors.js';
import { parseHostPort } from './listen-address.js';
import { readTlsFiles } from './peer-cert.js';
import { adminMethod, type AdminMethod } from './admin-proto.js';
import type { TlsFiles } from './types.js';

export interface AdminCallOptions {
  target: string;
  tls: TlsFiles;
  serverName?: string | undefined;
  deadlineMs?: number | undefined;
}

/** What a failed call means for an operator. */
export function explainAdminError(target: string, code: number, details: string): string {
  switch (code) {
    case grpc.status.UNAVAILABLE:
    case grpc.status.DEADLINE_EXCEEDED:
      return `cannot reach the gateway's admin API at ${target} (${statusName(code)}: ${details}); ` +
        'is admin.grpcListen set, and does the gateway trust this certificate\'s CA?';
    case grpc.status.PERMISSION_DENIED:
      return `the gateway at ${target} refused this certificate (${statusName(code)}: ${details})`;
    case grpc.status.UNAUTHENTICATED:
      return `the gateway at ${target} requires a trusted operator certificate (${statusName(code)}: ${details})`;
    default:
      return `admin call to ${target} failed: ${statusName(code)}: ${details}`;
  }
}

export async function callAdmin(opts: AdminCallOptions, method: AdminMethod, request: object = {}): Promise<unknown> {
  parseHostPort(opts.target, false);
  const { ca, cert, key } = await readTlsFiles(opts.tls);
  const channelOptions: grpc.ChannelOptions = {};
  if (opts.serverName) {
    channelOptions['grpc.ssl_target_name_override'] = opts.serverName;
    channelOptions['grpc.default_authority'] = opts.serverName;
  }
  const client = new grpc.Client(opts.target, grpc.credentials.createSsl(ca, key, cert), channelOptions);
  const m = adminMethod(method);
  try {
    return await new Promise<unknown>((resolve, reject) => {
      client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, request, new grpc.Metadata(),
        { deadline: Date.now() + (opts.deadlineMs ?? 5000) },
        (err, value) => (err ? reject(new ControlError(err.code, err.details, explainAdminError(opts.target, err.code, err.details))) : resolve(value)));
    });
  } finally {
    client.close();
  }
}
