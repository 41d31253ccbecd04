// The edge's side of braid.v1.RendezvousService: register an intent (initiator), watch the
// intents addressed to this edge (target; the stream is re-opened with backoff when it breaks),
// resolve an intent. One mTLS channel to the cloud's control plane.
import * as grpc from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import { silentLogger, type Logger } from '../log.js';
import { ControlError, statusName } from '../control/errors.js';
import { readTlsFiles } from '../control/peer-cert.js';
import type { TlsFiles } from '../control/types.js';
import { MAX_CONTROL_MESSAGE_BYTES } from '../control/validate.js';
import { RENDEZVOUS_SERVICE, checkIntent, rendezvousMethod, type IntentMsg, type IntentOutcome, type RegisterIntentRequest } from './proto.js';

export interface RendezvousClientOptions {
  /** "host:port" of the cloud control plane. */
  target: string;
  tls: TlsFiles;
  serverName?: string;
  logger?: Logger;
  tracer?: Tracer;
  deadlineMs?: number;
}

/** What the peer logic (link.ts) needs from the rendezvous: the client below, or a test double of the cloud. */
export interface Rendezvous {
  register(req: RegisterIntentRequest): Promise<IntentMsg>;
  resolve(intentId: string, outcome: IntentOutcome): Promise<void>;
  /** Calls onIntent for every intent addressed to us, now and later; returns a stop function. */
  watch(onIntent: (i: IntentMsg) => void): () => void;
}

export class RendezvousClient implements Rendezvous {
  private readonly log: Logger;
  private readonly tracer: Tracer;
  private closed = false;

  private constructor(private readonly client: grpc.Client, private readonly opts: RendezvousClientOptions) {
    this.log = (opts.logger ?? silentLogger).child({ component: 'rendezvous-client' });
    this.tracer = opts.tracer ?? trace.getTracer('braid.rendezvous');
  }

  static async open(opts: RendezvousClientOptions): Promise<RendezvousClient> {
    const { ca, cert, key } = await readTlsFiles(opts.tls);
    const channelOptions: grpc.ChannelOptions = {
      'grpc.max_receive_message_length': MAX_CONTROL_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_CONTROL_MESSAGE_BYTES,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 2000,
    };
    if (opts.serverName) {
      channelOptions['grpc.ssl_target_name_override'] = opts.serverName;
      channelOptions['grpc.default_authority'] = opts.serverName;
    }
    return new RendezvousClient(new grpc.Client(opts.target, grpc.credentials.createSsl(ca, key, cert), channelOptions), opts);
  }

  private unary<T>(name: 'RegisterIntent' | 'ResolveIntent', req: object): Promise<T> {
    const m = rendezvousMethod(name);
    const span = this.tracer.startSpan(`${RENDEZVOUS_SERVICE}/${name}`, {
      kind: SpanKind.CLIENT, attributes: { 'rpc.system': 'grpc', 'rpc.service': RENDEZVOUS_SERVICE, 'rpc.method': name },
    });
    return new Promise<T>((resolve, reject) => {
      this.client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, req, new grpc.Metadata(),
        { deadline: Date.now() + (this.opts.deadlineMs ?? 5000) }, (err, value) => {
          if (err) {
            const e = new ControlError(err.code, err.details, `${name} to ${this.opts.target} failed: ${statusName(err.code)}: ${err.details}`);
            span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
            span.end();
            reject(e);
            return;
          }
          span.end();
          resolve(value as T);
        });
    });
  }

  async register(req: RegisterIntentRequest): Promise<IntentMsg> {
    const raw = await this.unary<unknown>('RegisterIntent', req);
    const i = checkIntent(raw);
    if (typeof i === 'string') throw new ControlError(grpc.status.INTERNAL, `invalid Intent from the cloud: ${i}`);
    return i;
  }

  async resolve(intentId: string, outcome: IntentOutcome): Promise<void> {
    await this.unary<unknown>('ResolveIntent', { intentId, outcome });
  }

  watch(onIntent: (i: IntentMsg) => void): () => void {
    let stopped = false;
    let call: grpc.ClientReadableStream<unknown> | undefined;
    let backoff = 200;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const open = (): void => {
      if (stopped || this.closed) return;
      const m = rendezvousMethod('WatchIntents');
      const c = this.client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, {}, new grpc.Metadata()) as grpc.ClientReadableStream<unknown>;
      call = c;
      c.on('data', (raw: unknown) => {
        backoff = 200;
        const i = checkIntent(raw);
        if (typeof i === 'string') {
          this.log.warn({ err: i }, 'malformed intent from the cloud dropped');
          return;
        }
        onIntent(i);
      });
      const again = (why: string): void => {
        if (call !== c || stopped) return;
        call = undefined;
        this.log.warn({ why, retryInMs: backoff }, 'rendezvous watch stream down');
        timer = setTimeout(open, backoff);
        timer.unref();
        backoff = Math.min(backoff * 2, 5000);
      };
      c.on('error', (e: grpc.ServiceError) => again(`${statusName(e.code)}: ${e.details}`));
      c.on('end', () => again('the cloud ended the stream'));
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(timer);
      call?.cancel();
    };
  }

  close(): void {
    this.closed = true;
    this.client.close();
  }
}
