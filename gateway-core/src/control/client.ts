// The edge side of the control plane: one Hello call over mutual TLS.
import * as grpc from '@grpc/grpc-js';
import { ControlError, statusName } from './errors.js';
import { parseHostPort } from './listen-address.js';
import { readTlsFiles } from './peer-cert.js';
import { helloMethod } from './proto.js';
import type { HelloOptions, HelloReply, HelloRequest } from './types.js';
import { MAX_CONTROL_MESSAGE_BYTES, validateHelloReply } from './validate.js';

const DEFAULT_DEADLINE_MS = 5000;

function metadataOf(headers: Record<string, string> | undefined): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers ?? {})) md.set(k, v);
  return md;
}

/**
 * Sends HelloRequest to the cloud and returns its validated HelloReply. Every failure (TLS,
 * connection, deadline, refusal by the cloud, malformed reply) rejects with a ControlError whose
 * code is a gRPC status and whose message names the target, the status and the details.
 */
export async function sendHello(opts: HelloOptions, req: HelloRequest): Promise<HelloReply> {
  parseHostPort(opts.target, false);
  const { ca, cert, key } = await readTlsFiles(opts.tls);
  const fail = (code: number, details: string): ControlError =>
    new ControlError(code, details, `Hello to ${opts.target} failed: ${statusName(code)}: ${details}`);

  const channelOptions: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': MAX_CONTROL_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_CONTROL_MESSAGE_BYTES,
  };
  if (opts.serverName) {
    channelOptions['grpc.ssl_target_name_override'] = opts.serverName;
    channelOptions['grpc.default_authority'] = opts.serverName;
  }
  // Only our CA is trusted for the server certificate, not the system roots.
  const client = new grpc.Client(opts.target, grpc.credentials.createSsl(ca, key, cert), channelOptions);
  const method = helloMethod();
  try {
    const raw = await new Promise<unknown>((resolve, reject) => {
      client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, req,
        metadataOf(opts.headers), { deadline: Date.now() + (opts.deadlineMs ?? DEFAULT_DEADLINE_MS) },
        (err, value) => (err ? reject(fail(err.code, err.details)) : resolve(value)));
    });
    const reply = validateHelloReply(raw);
    if (!reply.ok) throw fail(grpc.status.INTERNAL, `invalid HelloReply from cloud: ${reply.reason}`);
    if (!req.ciphers.includes(reply.value.cipher)) {
      throw fail(grpc.status.INTERNAL, `cloud chose cipher ${reply.value.cipher}, which was not offered`);
    }
    return reply.value;
  } finally {
    client.close();
  }
}
