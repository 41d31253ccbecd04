// The reporter's transport over gRPC with mutual TLS: one channel to the cloud's control plane,
// one bidirectional Report stream at a time. gRPC keepalive pings (HTTP/2 PING) detect a dead
// connection even when the reporter has nothing to say; the reporter's own empty batches and
// acknowledgement timeout detect a cloud that no longer processes the stream.
import * as grpc from '@grpc/grpc-js';
import { statusName } from '../control/errors.js';
import type { TlsFiles } from '../control/types.js';
import { MAX_CONTROL_MESSAGE_BYTES } from '../control/validate.js';
import { readFileSync } from 'node:fs';
import { reportMethod } from './proto.js';
import type { UplinkHandlers, UplinkStream, UplinkTransport } from './reporter.js';
import type { ReportRequest } from './types.js';

export interface GrpcUplinkOptions {
  /** "host:port" of the cloud control plane. */
  target: string;
  tls: TlsFiles;
  /** Name to verify the server certificate against instead of the host in `target`. */
  serverName?: string | undefined;
  /** HTTP/2 keepalive ping interval, ms. */
  keepaliveTimeMs?: number;
  /** A ping unanswered this long closes the connection, ms. */
  keepaliveTimeoutMs?: number;
}

function ackedSeqOf(msg: unknown): number | undefined {
  const v = (msg as { ackedSeq?: unknown } | null)?.ackedSeq;
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

export function grpcUplink(o: GrpcUplinkOptions): UplinkTransport {
  const opts: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': MAX_CONTROL_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_CONTROL_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': o.keepaliveTimeMs ?? 10_000,
    'grpc.keepalive_timeout_ms': o.keepaliveTimeoutMs ?? 5_000,
    'grpc.keepalive_permit_without_calls': 1,
    // The reporter has its own backoff for streams; the channel's reconnection is kept short.
    'grpc.initial_reconnect_backoff_ms': 500,
    'grpc.max_reconnect_backoff_ms': 5_000,
  };
  if (o.serverName) {
    opts['grpc.ssl_target_name_override'] = o.serverName;
    opts['grpc.default_authority'] = o.serverName;
  }
  // Read once: the reporter runs for the process's life and re-opens streams, not files.
  const creds = grpc.credentials.createSsl(readFileSync(o.tls.ca), readFileSync(o.tls.key), readFileSync(o.tls.cert));
  let client = new grpc.Client(o.target, creds, opts);
  // After a stream fails, the next one gets a fresh channel: the old channel's connection may be
  // stranded on a carrier that died (its TCP connection hangs until keepalive gives up), while a
  // new connection follows the routes as they are now, over whichever carrier is alive.
  let fresh = true;
  const method = reportMethod();
  return {
    open(h: UplinkHandlers): UplinkStream {
      if (!fresh) {
        client.close();
        client = new grpc.Client(o.target, creds, opts);
      }
      fresh = false;
      const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, new grpc.Metadata());
      let ended = false;
      const end = (reason: string): void => {
        if (ended) return;
        ended = true;
        h.onEnd(reason);
      };
      call.on('data', (msg: unknown) => {
        const acked = ackedSeqOf(msg);
        if (acked === undefined) {
          end('malformed ReportResponse from cloud');
          call.cancel();
          return;
        }
        h.onAck(acked);
      });
      call.on('error', (e: grpc.ServiceError) => end(`${statusName(e.code)}: ${e.details}`));
      call.on('end', () => end('cloud ended the stream'));
      return {
        write: (req: ReportRequest) => {
          if (!ended) call.write(req);
        },
        close: () => {
          ended = true;
          call.cancel();
        },
      };
    },
    close: () => client.close(),

  };
}
