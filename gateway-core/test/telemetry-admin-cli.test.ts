// The admin gRPC API and the `braid` CLI against it, for real: mutual TLS with dev certificates
// from scripts/gen-dev-certs.sh, an operator certificate admitted, an edge certificate of the
// same CA refused (PERMISSION_DENIED), a foreign CA's certificate refused at the TLS handshake,
// and a port with nothing listening. Needs openssl, not root.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runBraidCli } from '../src/cli/braid.js';
import { adminApiFrom } from '../src/control/admin-api.js';
import { startAdminGrpcServer } from '../src/control/admin-server.js';
import type { ControlServer } from '../src/control/types.js';
import type { PathStatus } from '../src/session/session.js';
import { EventLog } from '../src/telemetry/events.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

function path(id: number, name: string, state: PathStatus['state'], rttMs: number | null): PathStatus {
  return {
    id, name, state, transport: `udp wan${id}`, txBytes: 1_500_000 * (id + 1), rxBytes: 2000, txPackets: 1000, rxPackets: 20, txDataBytes: 1, rxDataBytes: 1,
    rttMs, minRttMs: rttMs, rateMbps: 4.5, inflightBytes: 0, sendErrors: id,
  };
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('braid CLI against the admin gRPC API', () => {
  let dir: string;
  let server: ControlServer;
  let target: string;
  const events = new EventLog(100);

  const cli = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    let out = '';
    let err = '';
    const code = await runBraidCli(args, { out: (s) => { out += s; }, err: (s) => { err += s; }, env });
    return { code, out, err };
  };
  const operator = () => ['--target', target, '--certs', dir, '--server-name', 'braid-admin'];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'braid-cli-'));
    execFileSync('bash', [join(REPO, 'scripts/gen-dev-certs.sh'), dir]);
    events.record({ kind: 'session.established', sessionId: 77, message: 'session 77 established with 198.18.0.1:7443', time: Date.UTC(2026, 0, 1, 12, 0, 0) });
    events.record({ kind: 'path.down', sessionId: 77, path: 'lte-b', message: 'path lte-b down', time: Date.UTC(2026, 0, 1, 12, 0, 5) });
    const api = adminApiFrom({ role: 'edge', id: 'edge-1', version: '0.1.0', ready: () => true }, {
      sessions: () => [{
        id: 77, peer: '198.18.0.1:7443', paths: [path(0, 'lte-a', 'up', 31.25), path(1, 'lte-b', 'down', null)],
        carriers: [{ name: 'lte-a', operator: 'Telekom', technology: 'lte', interface: 'wan0' }, { name: 'lte-b', interface: 'wan1' }],
        reorder: { delivered: 990, deliveredLate: 1, skipped: 3, heldNow: 0, heldBytes: 0 },
      }],
      drops: () => ({ 'bad-tag': 2 }),
      tunnel: () => ({ rxPackets: 10, txPackets: 20, rxBytes: 12_000, txBytes: 24_000 }),
    }, events);
    server = await startAdminGrpcServer({
      listen: '127.0.0.1:0', operatorOu: 'operator', api,
      tls: { ca: join(dir, 'ca.pem'), cert: join(dir, 'admin.pem'), key: join(dir, 'admin.key') },
    });
    target = `127.0.0.1:${server.port}`;
  });

  after(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('status: a few human lines', async () => {
    const r = await cli([...operator(), 'status']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^gateway {3}edge edge-1 \(version 0\.1\.0\)$/m);
    assert.match(r.out, /^ready {5}yes$/m);
    assert.match(r.out, /^paths {5}1\/2 up$/m);
    assert.match(r.out, /^drops {5}bad-tag 2$/m);
    assert.match(r.out, /^tunnel {4}received 10 packets \(12\.0 kB\), sent 20 packets \(24\.0 kB\)$/m);
  });

  test('status --json: the API answer', async () => {
    const r = await cli([...operator(), '--json', 'status']);
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out) as { role: string; pathsUp: number; pathsTotal: number; drops: Record<string, number> };
    assert.deepEqual([s.role, s.pathsUp, s.pathsTotal, s.drops['bad-tag']], ['edge', 1, 2, 2]);
  });

  test('paths: a table with carrier, state and RTT ("-" when unknown)', async () => {
    const r = await cli([...operator(), 'paths']);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^SESSION +PEER +PATH +CARRIER +TECH +IFACE +STATE +RTT ms +RATE Mbit\/s +SENT +RECEIVED +ERRORS$/);
    assert.match(lines[1]!, /^77 +198\.18\.0\.1:7443 +lte-a +Telekom +lte +wan0 +up +31\.3 +4\.50 +1\.5 MB +2\.0 kB +0$/);
    assert.match(lines[2]!, /^77 +198\.18\.0\.1:7443 +lte-b +- +- +wan1 +down +- +4\.50 +3\.0 MB +2\.0 kB +1$/);
  });

  test('paths --json: rtt_known tells an unknown RTT from zero', async () => {
    const r = await cli([...operator(), 'paths', '--json']);
    const paths = JSON.parse(r.out) as { name: string; rttKnown: boolean; operator: string }[];
    assert.deepEqual(paths.map((p) => [p.name, p.rttKnown, p.operator]), [['lte-a', true, 'Telekom'], ['lte-b', false, '']]);
  });

  test('sessions and events', async () => {
    const s = await cli([...operator(), 'sessions']);
    assert.equal(s.code, 0, s.err);
    assert.match(s.out, /^SESSION +PEER +PATHS UP +SENT +RECEIVED +DELIVERED +GAPS\n77 +198\.18\.0\.1:7443 +1\/2 +4\.5 MB +4\.0 kB +990 +3\n$/);
    const e = await cli([...operator(), 'events']);
    assert.equal(e.code, 0, e.err);
    assert.match(e.out, /^SEQ +TIME +KIND +SESSION +PATH +MESSAGE$/m);
    assert.match(e.out, /^ *1 +2026-01-01 12:00:00\.000 +session\.established +77 +- +session 77 established with 198\.18\.0\.1:7443$/m);
    assert.match(e.out, /^ *2 +2026-01-01 12:00:05\.000 +path\.down +77 +lte-b +path lte-b down$/m);
    const later = await cli([...operator(), 'events', '--after', '1', '--json']);
    assert.deepEqual((JSON.parse(later.out) as { kind: string }[]).map((x) => x.kind), ['path.down']);
  });

  test('an unreachable gateway: exit 1 and a sentence saying so', async () => {
    const r = await cli(['--target', `127.0.0.1:${await closedPort()}`, '--certs', dir, '--timeout', '3000', 'status']);
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.match(r.err, /^braid: cannot reach the gateway's admin API at 127\.0\.0\.1:\d+ \(UNAVAILABLE: /);
  });

  test('an edge certificate of the same CA is unauthorised: PERMISSION_DENIED with the reason', async () => {
    const r = await cli(['--target', target, '--server-name', 'braid-admin', '--ca', join(dir, 'ca.pem'),
      '--cert', join(dir, 'edge.pem'), '--key', join(dir, 'edge.key'), 'status']);
    assert.equal(r.code, 1);
    assert.match(r.err, /^braid: the gateway at 127\.0\.0\.1:\d+ refused this certificate \(PERMISSION_DENIED: certificate CN=edge-1 is not an operator certificate \(OU=operator required\)\)$/m);
  });

  test('a certificate from a foreign CA is refused at the TLS handshake', async () => {
    const r = await cli(['--target', target, '--server-name', 'braid-admin', '--ca', join(dir, 'ca.pem'),
      '--cert', join(dir, 'rogue-edge.pem'), '--key', join(dir, 'rogue-edge.key'), '--timeout', '3000', 'status']);
    assert.equal(r.code, 1);
    assert.match(r.err, /^braid: cannot reach the gateway's admin API at .*\(UNAVAILABLE: /);
  });

  test('usage errors exit 2 (policy get|set is tested in policy-admin-cli.test.ts)', async () => {
    assert.equal((await cli([])).code, 2);
    assert.equal((await cli(['--certs', dir, 'frobnicate'])).code, 2);
    const p = await cli(['--certs', dir, 'policy', 'frobnicate']);
    assert.equal(p.code, 2);
    assert.match(p.err, /unknown policy command "frobnicate"/);
    const noCerts = await cli(['status']);
    assert.equal(noCerts.code, 2);
    assert.match(noCerts.err, /operator certificate is needed/);
  });

  test('policy get on a gateway without a policy plane: UNIMPLEMENTED, said so', async () => {
    const r = await cli([...operator(), 'policy', 'get']);
    assert.equal(r.code, 1);
    assert.match(r.err, /^braid: admin call to .* failed: UNIMPLEMENTED: this gateway has no policy plane$/m);
  });

  test('the package bin runs the same CLI', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [join(REPO, 'gateway-core/bin/braid.mjs'), 'status'], {
        env: { ...process.env, BRAID_ADMIN: target, BRAID_CERTS: dir, BRAID_SERVER_NAME: 'braid-admin' }, timeout: 30_000,
      }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
    });
    assert.match(out, /^gateway {3}edge edge-1/m);
  });
});
