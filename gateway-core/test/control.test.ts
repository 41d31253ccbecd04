// Control plane over real mTLS on loopback: certificates made by scripts/gen-dev-certs.sh, a real
// grpc-js server and client. No root needed.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';
import { pino } from 'pino';
import {
  ControlError, PROTOCOL_VERSION, SESSION_SERVICE, sendHello, startControlServer,
  type ControlServer, type HelloReply, type HelloRequest, type PeerIdentity, type TlsFiles,
} from '../src/control/index.js';
import { helloMethod } from '../src/control/proto.js';

const SCRIPT = new URL('../../scripts/gen-dev-certs.sh', import.meta.url).pathname;

let dir = '';
let server: ControlServer;
let target = '';
const logLines: string[] = [];
/** What the server's onHello does; tests replace it. */
let handler: (req: HelloRequest, peer: PeerIdentity) => Promise<HelloReply>;
let handlerCalls = 0;

const files = (name: 'edge' | 'rogue-edge' | 'cloud', ca = 'ca'): TlsFiles =>
  ({ ca: join(dir, `${ca}.pem`), cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) });

function request(over: Partial<HelloRequest> = {}): HelloRequest {
  return {
    edgeId: 'edge-1',
    softwareVersion: '0.1.0-test',
    protocolVersion: PROTOCOL_VERSION,
    ciphers: ['aes-256-gcm', 'chacha20-poly1305'],
    carriers: [
      { name: 'lte-a', interface: 'wwan0', metadata: { operator: 'Orange', mcc: '208', mnc: '01', technology: '5G-NSA' } },
      { name: 'lte-b', interface: 'wwan1', metadata: {} },
    ],
    ...over,
  };
}

function reply(over: Partial<HelloReply> = {}): HelloReply {
  return {
    sessionId: 0xfffffffe,
    cipher: 'chacha20-poly1305',
    edgeToCloudKey: randomBytes(32),
    cloudToEdgeKey: randomBytes(32),
    dataEndpoint: { host: '198.18.0.1', port: 7000 },
    tunnelAddress: '100.64.0.2',
    tunnelPrefixLen: 24,
    tunnelMtu: 1400,
    keepaliveMs: 250,
    tcpRelay: true,
    ...over,
  };
}

async function rejection(p: Promise<unknown>): Promise<ControlError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ControlError, `expected ControlError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

/** A plain grpc-js client, for what sendHello would not send (no cert, oversized messages, health). */
function rawClient(creds: grpc.ChannelCredentials): grpc.Client {
  return new grpc.Client(target, creds, { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
}

function edgeCreds(name: 'edge' | 'rogue-edge'): grpc.ChannelCredentials {
  const f = files(name);
  return grpc.credentials.createSsl(readFileSync(f.ca), readFileSync(f.key), readFileSync(f.cert));
}

function unary(client: grpc.Client, method: { path: string; requestSerialize: (v: object) => Buffer; responseDeserialize: (b: Buffer) => unknown },
  req: object, deadlineMs = 5000): Promise<{ err: grpc.ServiceError | null; value: unknown }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, req, new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs }, (err, value) => resolve({ err: err ?? null, value }));
  });
}

const logged = (needle: string): string | undefined => logLines.find((l) => l.includes(needle));

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'braid-control-'));
  execFileSync('bash', [SCRIPT, dir, '--edge-id', 'edge-1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const logger = pino({ level: 'debug' }, { write: (line: string) => { logLines.push(line); } });
  server = await startControlServer({
    listen: '127.0.0.1:0',
    tls: files('cloud'),
    logger,
    onHello: (req, peer) => {
      handlerCalls++;
      return handler(req, peer);
    },
  });
  target = `127.0.0.1:${server.port}`;
});

after(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  handlerCalls = 0;
  handler = async () => reply();
});

test('gen-dev-certs.sh is idempotent and makes the certificates the tests rely on', () => {
  const before = readFileSync(join(dir, 'edge.pem'), 'utf8');
  const out = execFileSync('bash', [SCRIPT, dir, '--edge-id', 'edge-1'], { encoding: 'utf8' });
  assert.equal(out, '', 'quiet on success');
  assert.equal(readFileSync(join(dir, 'edge.pem'), 'utf8'), before, 'nothing re-issued');
  const ca = new X509Certificate(readFileSync(join(dir, 'ca.pem')));
  const edge = new X509Certificate(readFileSync(join(dir, 'edge.pem')));
  const cloud = new X509Certificate(readFileSync(join(dir, 'cloud.pem')));
  const rogue = new X509Certificate(readFileSync(join(dir, 'rogue-edge.pem')));
  assert.ok(edge.verify(ca.publicKey) && cloud.verify(ca.publicKey));
  assert.ok(!rogue.verify(ca.publicKey));
  assert.match(edge.subject, /CN=edge-1/);
  assert.equal(edge.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.match(cloud.subjectAltName ?? '', /DNS:localhost.*DNS:braid-cloud.*IP Address:127\.0\.0\.1/);
});

test('a trusted edge gets the HelloReply the handler built, every field intact', async () => {
  const sent = reply();
  let seen: { req: HelloRequest; peer: PeerIdentity } | undefined;
  handler = async (req, peer) => {
    seen = { req, peer };
    return sent;
  };
  const req = request();
  const got = await sendHello({ target, tls: files('edge') }, req);
  assert.deepEqual(got, sent);
  assert.equal(got.edgeToCloudKey.length, 32);
  assert.ok(got.cloudToEdgeKey.equals(sent.cloudToEdgeKey));
  assert.deepEqual(seen?.req, req);
  assert.equal(seen?.peer.commonName, 'edge-1');
  assert.equal(seen?.peer.fingerprint256, new X509Certificate(readFileSync(join(dir, 'edge.pem'))).fingerprint256);
  assert.match(seen?.peer.address ?? '', /^127\.0\.0\.1:\d+$/);
  assert.ok(logged('edge hello accepted'));
});

test('an edge whose certificate comes from another CA gets no session, and the refusal is logged', async () => {
  const err = await rejection(sendHello({ target, tls: files('rogue-edge'), deadlineMs: 3000 }, request()));
  assert.notEqual(err.code, grpc.status.OK);
  assert.match(err.message, new RegExp(`Hello to ${target} failed: [A-Z_]+: `));
  assert.equal(handlerCalls, 0);
  const line = logged('edge refused: client certificate not trusted');
  assert.ok(line, `no refusal log line in:\n${logLines.join('')}`);
  const msg = (JSON.parse(line) as { msg: string }).msg;
  assert.match(msg, /^edge refused: client certificate not trusted \(CN=edge-1, issuer=CN=Rogue CA, O=Braid dev, reason=[A-Z_]+\) from 127\.0\.0\.1:\d+$/);
});

test('an edge without a client certificate is refused', async () => {
  const client = rawClient(grpc.credentials.createSsl(readFileSync(join(dir, 'ca.pem'))));
  try {
    const { err } = await unary(client, helloMethod(), request(), 3000);
    assert.ok(err, 'call must fail');
    assert.equal(handlerCalls, 0);
    assert.ok(logged('edge refused: no client certificate'), logLines.join(''));
  } finally {
    client.close();
  }
});

test('the edge verifies the server certificate', async () => {
  // An edge that trusts another CA refuses our cloud...
  const wrongCa = await rejection(sendHello({ target, tls: files('edge', 'rogue-ca'), deadlineMs: 3000 }, request()));
  assert.equal(wrongCa.code, grpc.status.UNAVAILABLE);
  // ...and so does one that expects another name; the right name override works.
  const wrongName = await rejection(sendHello({ target, tls: files('edge'), serverName: 'not-braid', deadlineMs: 3000 }, request()));
  assert.equal(wrongName.code, grpc.status.UNAVAILABLE);
  assert.equal(handlerCalls, 0);
  await sendHello({ target, tls: files('edge'), serverName: 'braid-cloud' }, request());
  assert.equal(handlerCalls, 1);
});

test('a handler that throws ControlError refuses with that status and reason', async () => {
  handler = async () => {
    throw new ControlError(grpc.status.PERMISSION_DENIED, 'edge edge-1 is disabled');
  };
  const err = await rejection(sendHello({ target, tls: files('edge') }, request()));
  assert.equal(err.code, grpc.status.PERMISSION_DENIED);
  assert.equal(err.details, 'edge edge-1 is disabled');
  assert.equal(err.message, `Hello to ${target} failed: PERMISSION_DENIED: edge edge-1 is disabled`);
});

test('a handler that fails otherwise gives INTERNAL without leaking its error', async () => {
  handler = async () => {
    throw new Error('database password is hunter2');
  };
  const err = await rejection(sendHello({ target, tls: files('edge') }, request()));
  assert.equal(err.code, grpc.status.INTERNAL);
  assert.doesNotMatch(err.message, /hunter2/);
});

test('an invalid reply from the handler is not sent to the edge', async () => {
  handler = async () => reply({ edgeToCloudKey: randomBytes(16) });
  assert.equal((await rejection(sendHello({ target, tls: files('edge') }, request()))).code, grpc.status.INTERNAL);
  handler = async () => reply({ sessionId: 0 });
  assert.equal((await rejection(sendHello({ target, tls: files('edge') }, request()))).code, grpc.status.INTERNAL);
  handler = async () => reply({ cipher: 'rot13' });
  assert.equal((await rejection(sendHello({ target, tls: files('edge') }, request()))).code, grpc.status.INTERNAL);
  assert.ok(logged('onHello returned an invalid HelloReply'));
});

test('the deadline holds when the handler never answers', async () => {
  handler = () => new Promise<HelloReply>(() => {});
  const t0 = Date.now();
  const err = await rejection(sendHello({ target, tls: files('edge'), deadlineMs: 300 }, request()));
  const elapsed = Date.now() - t0;
  assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED);
  assert.match(err.message, /DEADLINE_EXCEEDED/);
  assert.ok(elapsed >= 250 && elapsed < 1500, `took ${elapsed} ms`);
});

test('health answers SERVING to a trusted client only', async () => {
  const check = healthService['Check'];
  assert.ok(check);
  const client = rawClient(edgeCreds('edge'));
  try {
    for (const service of ['', SESSION_SERVICE]) {
      const { err, value } = await unary(client, check, { service });
      assert.equal(err, null);
      assert.deepEqual(value, { status: 'SERVING' });
    }
  } finally {
    client.close();
  }
  const rogue = rawClient(edgeCreds('rogue-edge'));
  try {
    const { err } = await unary(rogue, check, { service: '' }, 3000);
    assert.ok(err, 'health must not answer an untrusted edge');
  } finally {
    rogue.close();
  }
});

/** One grpc.reflection.v1 ServerReflectionInfo exchange: list the services. */
async function listServicesByReflection(client: grpc.Client): Promise<string[]> {
  const require = createRequire(import.meta.url);
  const protoFile = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto/grpc/reflection/v1/reflection.proto');
  const pkg = loadSync(protoFile, { keepCase: true });
  const svc = pkg['grpc.reflection.v1.ServerReflection'] as Record<string, { path: string; requestSerialize: (v: object) => Buffer; responseDeserialize: (b: Buffer) => unknown }>;
  const m = svc['ServerReflectionInfo']!;
  return new Promise((resolve, reject) => {
    const call = client.makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, new grpc.Metadata(), { deadline: Date.now() + 5000 });
    call.on('data', (r: { list_services_response?: { service?: { name: string }[] } }) => {
      resolve((r.list_services_response?.service ?? []).map((x) => x.name));
      call.end();
    });
    call.on('error', reject);
    call.write({ list_services: '' });
  });
}

test('server reflection lists the session service to a trusted client, and nothing to an untrusted one', async () => {
  const client = rawClient(edgeCreds('edge'));
  try {
    const names = await listServicesByReflection(client);
    assert.ok(names.includes(SESSION_SERVICE), `reflection listed ${names.join(', ')}`);
  } finally {
    client.close();
  }
  const rogue = rawClient(edgeCreds('rogue-edge'));
  try {
    await assert.rejects(listServicesByReflection(rogue));
  } finally {
    rogue.close();
  }
});

test('hostile hellos are refused with INVALID_ARGUMENT, and the server carries on', async () => {
  const manyCarriers = Array.from({ length: 10_000 }, (_, i) => ({ name: `c${i}`, interface: 'eth0', metadata: { k: 'v' } }));
  const cases: Array<[string, HelloRequest]> = [
    ['10k carriers', request({ carriers: manyCarriers })],
    ['1 MB edge id', request({ edgeId: 'e'.repeat(1_000_000) })],
    ['empty edge id', request({ edgeId: '' })],
    ['no ciphers', request({ ciphers: [] })],
    ['unset protocol version', request({ protocolVersion: 0 })],
    ['huge metadata', request({ carriers: [{ name: 'a', interface: 'b', metadata: { x: 'y'.repeat(100_000) } }] })],
  ];
  for (const [what, req] of cases) {
    const err = await rejection(sendHello({ target, tls: files('edge') }, req));
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT, `${what}: ${err.message}`);
    assert.match(err.message, /invalid HelloRequest/);
  }
  const future = await rejection(sendHello({ target, tls: files('edge') }, request({ protocolVersion: 2 })));
  assert.equal(future.code, grpc.status.FAILED_PRECONDITION);

  // Beyond the max message size the server refuses before decoding (the raw client has no limit).
  const client = rawClient(edgeCreds('edge'));
  try {
    const { err } = await unary(client, helloMethod(), request({ edgeId: 'e'.repeat(3 * 1024 * 1024) }));
    assert.equal(err?.code, grpc.status.RESOURCE_EXHAUSTED);
  } finally {
    client.close();
  }
  assert.equal(handlerCalls, 0);
  await sendHello({ target, tls: files('edge') }, request());
  assert.equal(handlerCalls, 1);
});

test('close() returns promptly even with a call that never finishes', async () => {
  const logger = pino({ level: 'silent' });
  const s = await startControlServer({ listen: '127.0.0.1:0', tls: files('cloud'), logger, onHello: () => new Promise(() => {}) });
  const pending = sendHello({ target: `127.0.0.1:${s.port}`, tls: files('edge'), deadlineMs: 10_000 }, request()).catch((e: unknown) => e);
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  await s.close();
  assert.ok(Date.now() - t0 < 5000);
  const err = await pending;
  assert.ok(err instanceof ControlError);
});
