// Two cloud replicas behind a UDP load balancer, in real containers started by testcontainers
// (v11) through podman's Docker API, with the image deploy/build-image.sh builds offline:
//
//   client ── lan ── edge ══ car0 ══ lb ── core ── cloud-a, cloud-b ── server
//                         ══ car1 ══╝
//
// The load balancer (a small user-space L4 balancer in its own container, standing in for a
// cloud LB or kube-proxy) gives each new UDP flow to the next healthy replica, so the edge's two
// paths land on different replicas. The session lives on one of them (its owner, named by the
// session id); the other forwards that path's packets to the owner and relays its answers back
// (gateway-cloud/src/forward.ts). A 4 MiB download through the tunnel must be byte-identical.
// Then the owner is killed (SIGKILL): the balancer's health checks drop it, the edge finds its
// paths dead and says Hello again through the balancer, and new traffic must flow within 3 s.
//
// Needs root and podman (scripts/setup-podman.sh); the test starts `podman system service` on
// /run/podman/podman.sock itself when nothing answers there. Without them it skips with the
// reason, except under CI=true, where it fails.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Readable } from 'node:stream';
import { GenericContainer, type StartedTestContainer } from 'testcontainers';
import { stringify } from 'yaml';
import { ROOT } from './chart-harness.js';
import { expectedPayloadSha } from './harness/payload.js';
import { isRoot } from './harness/root.js';
import { untilValue } from '../gateway-core/test/wait.js';

const SOCKET = '/run/podman/podman.sock';
const IMAGE = 'localhost/braid:dev';
const LABEL = { 'braid-test': 'containers-tc' };
const NET = {
  lan: { name: 'braid-tc-lan', subnet: '172.30.10.0/24' },
  car0: { name: 'braid-tc-car0', subnet: '172.30.20.0/24' },
  car1: { name: 'braid-tc-car1', subnet: '172.30.21.0/24' },
  core: { name: 'braid-tc-core', subnet: '172.30.30.0/24' },
};
const IP = {
  client: '172.30.10.20', edgeLan: '172.30.10.10', edgeCar0: '172.30.20.10', edgeCar1: '172.30.21.10',
  lbCar0: '172.30.20.5', lbCar1: '172.30.21.5', vip: '172.30.30.5', cloudA: '172.30.30.11', cloudB: '172.30.30.12', server: '172.30.30.20',
};
const PORT = { control: 7443, data: 7000, forward: 7002, cloudAdmin: 9465, edgeAdmin: 9464, http: 8080, echo: 9000 };
const PAYLOAD_BYTES = 4 * 1024 * 1024;
const REHOME_BUDGET_MS = 3000;

interface Run { status: number; stdout: string; stderr: string }
function sh(cmd: string, args: string[]): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 180_000 });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}
function must(r: Run, what: string): string {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

async function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath: socket, path: '/_ping', timeout: 1000 }, (res) => { res.resume(); resolve(res.statusCode === 200); });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** Why the test cannot run here, or undefined. */
function missing(): string | undefined {
  if (!isRoot()) return 'needs root (rootful podman, TUN, NET_ADMIN)';
  if (sh('podman', ['version', '--format', '{{.Client.Version}}']).status !== 0) return 'needs podman (scripts/setup-podman.sh)';
  return undefined;
}
function requirePodman(t: TestContext, why: string | undefined): boolean {
  if (why === undefined) return true;
  if (process.env.CI === 'true') throw new Error(`${why}, and CI=true: container tests must not be skipped in CI`);
  console.log(`# skipped ${t.name}: ${why}`);
  t.skip(why);
  return false;
}

/** testcontainers' builder, plus what it has no method for: /dev/net/tun, sysctls, several networks with fixed addresses. */
class Container extends GenericContainer {
  constructor() {
    super(IMAGE);
    this.withLabels(LABEL).withPullPolicy({ shouldPull: () => false });
  }
  tun(): this {
    this.hostConfig.Devices = [{ PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' }];
    return this.withAddedCapabilities('NET_ADMIN');
  }
  sysctls(s: Record<string, string>): this {
    this.hostConfig.Sysctls = { ...this.hostConfig.Sysctls, ...s };
    return this;
  }
  /** Networks in order (the first is the primary) with each one's address. */
  networks(n: [{ name: string }, string][]): this {
    this.createOpts.NetworkingConfig = { EndpointsConfig: Object.fromEntries(n.map(([net, ip]) => [net.name, { IPAMConfig: { IPv4Address: ip } }])) };
    this.hostConfig.NetworkMode = n[0]?.[0].name;
    return this;
  }
  node(script: string): this {
    return this.withEntrypoint(['node']).withCommand(['-e', script]);
  }
  /** Every output line, parsed when it is JSON, into `lines`. */
  collect(lines: string[]): this {
    return this.withLogConsumer((s: Readable) => {
      let buf = '';
      s.on('data', (d: Buffer | string) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          lines.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
    });
  }
}

// ---- the programs in the containers (the image has node, ip and nft, no shell) -------------

// A user-space L4 balancer: every new UDP flow (edge address:port) goes to the next healthy
// replica, round robin; each control connection to the next healthy replica that accepts within
// 300 ms. Health: GET /readyz every 200 ms; a replica that fails is taken out and the UDP flows
// it had move to a healthy one (as kube-proxy flushes conntrack entries of a removed endpoint).
const LB_JS = `
const dgram = require('node:dgram'), net = require('node:net'), http = require('node:http');
const R = ${JSON.stringify([IP.cloudA, IP.cloudB])}, VIP = '${IP.vip}', DATA = ${PORT.data}, CTL = ${PORT.control}, ADMIN = ${PORT.cloudAdmin};
const log = (o) => console.log(JSON.stringify({ t: Date.now(), ...o }));
const up = new Map(R.map((r) => [r, false]));
const flows = new Map();
const live = () => R.filter((r) => up.get(r));
let udpRr = 0, ctlRr = 0;
function set(r, ok) {
  if (up.get(r) === ok) return;
  up.set(r, ok);
  log({ health: r, up: ok });
  if (!ok) for (const f of flows.values()) if (f.replica === r) attach(f);
}
function check(r) {
  const req = http.get({ host: r, port: ADMIN, path: '/readyz', timeout: 250 }, (res) => { res.resume(); set(r, res.statusCode === 200); });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => set(r, false));
}
setInterval(() => R.forEach(check), 200);
const front = dgram.createSocket('udp4');
front.bind(DATA, VIP);
function attach(f) {
  if (f.up) f.up.close();
  f.up = undefined;
  const l = live();
  f.replica = l.length ? l[udpRr++ % l.length] : undefined;
  if (!f.replica) return;
  const s = dgram.createSocket('udp4');
  s.on('message', (m) => front.send(m, f.port, f.addr));
  s.on('error', () => {});
  f.up = s;
  log({ flow: f.key, replica: f.replica });
}
front.on('message', (m, ri) => {
  const key = ri.address + ':' + ri.port;
  let f = flows.get(key);
  if (!f) { f = { key, addr: ri.address, port: ri.port }; flows.set(key, f); attach(f); }
  else if (!f.up) attach(f);
  if (f.up) f.up.send(m, DATA, f.replica);
});
function tryConnect(c, order) {
  const r = order.shift();
  if (!r) return c.destroy();
  const u = net.connect({ host: r, port: CTL });
  const timer = setTimeout(() => { u.destroy(); tryConnect(c, order); }, 300);
  u.once('connect', () => { clearTimeout(timer); log({ control: r }); c.pipe(u); u.pipe(c); u.on('error', () => c.destroy()); c.on('error', () => u.destroy()); });
  u.once('error', () => { if (u.connecting) { clearTimeout(timer); tryConnect(c, order); } });
}
net.createServer((c) => {
  const l = live(), k = l.length ? ctlRr++ % l.length : 0;
  c.on('error', () => {});
  tryConnect(c, [...l.slice(k), ...l.slice(0, k)]);
}).listen(CTL, VIP);
process.on('SIGTERM', () => process.exit(0));
`;

// The server: a deterministic payload over HTTP, the address it sees at /whoami, a UDP echo.
const SERVER_JS = `
const http = require('node:http'), dgram = require('node:dgram');
const size = ${PAYLOAD_BYTES};
const buf = Buffer.alloc(size);
let x = 12345;
for (let i = 0; i < size; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; buf[i] = x >>> 24; }
http.createServer((req, res) => {
  if (req.url === '/whoami') return res.end(req.socket.remoteAddress.replace('::ffff:', ''));
  res.setHeader('content-length', size); res.end(buf);
}).listen(${PORT.http}, '0.0.0.0');
const echo = dgram.createSocket('udp4');
echo.on('message', (m, r) => echo.send(m, r.port, r.address));
echo.bind(${PORT.echo});
process.on('SIGTERM', () => process.exit(0));
`;

// The client, behind the edge: one download, then a UDP probe every 50 ms, each from a new
// socket (a new flow, as new traffic is), printing the ones answered.
const CLIENT_JS = `
require('node:child_process').execFileSync('ip', ['route', 'replace', 'default', 'via', '${IP.edgeLan}']);
const crypto = require('node:crypto'), dgram = require('node:dgram');
(async () => {
  const who = await (await fetch('http://${IP.server}:${PORT.http}/whoami')).text();
  const body = Buffer.from(await (await fetch('http://${IP.server}:${PORT.http}/payload')).arrayBuffer());
  console.log(JSON.stringify({ transfer: { who, bytes: body.length, sha256: crypto.createHash('sha256').update(body).digest('hex') } }));
  let seq = 0;
  setInterval(() => {
    const s = dgram.createSocket('udp4'), sent = Date.now(), n = seq++;
    const t = setTimeout(() => s.close(), 1500);
    s.on('message', () => { console.log(JSON.stringify({ probe: n, sent, got: Date.now() })); clearTimeout(t); s.close(); });
    s.on('error', () => {});
    s.send(String(n), ${PORT.echo}, '${IP.server}');
  }, 50);
})().catch((e) => { console.log(JSON.stringify({ error: e.message })); process.exit(1); });
`;

// The edge: carriers are whichever interfaces hold the car0/car1 addresses; the data endpoint
// (the balancer's address) is reached over each carrier through the balancer's leg on that
// carrier's network, as a multi-SIM router reaches the internet over each SIM.
const EDGE_JS = `
const { execFileSync } = require('node:child_process'), fs = require('node:fs');
const addrs = JSON.parse(execFileSync('ip', ['-j', '-4', 'addr']).toString());
const ifOf = (ip) => addrs.find((a) => a.addr_info.some((i) => i.local === ip)).ifname;
const car0 = ifOf('${IP.edgeCar0}'), car1 = ifOf('${IP.edgeCar1}');
execFileSync('ip', ['route', 'add', '${IP.vip}/32', 'via', '${IP.lbCar0}', 'dev', car0, 'metric', '100']);
execFileSync('ip', ['route', 'add', '${IP.vip}/32', 'via', '${IP.lbCar1}', 'dev', car1, 'metric', '200']);
fs.writeFileSync('/tmp/edge.yaml', fs.readFileSync('/etc/braid/edge.yaml', 'utf8').replace('CAR0_IF', car0).replace('CAR1_IF', car1));
process.argv = [process.argv[0], '/app/gateway-edge/dist/main.js', '--config', '/tmp/edge.yaml'];
import('/app/gateway-edge/dist/main.js');
`;

function cloudConfig(id: string, address: string): object {
  return {
    id,
    control: { listen: `0.0.0.0:${PORT.control}`, tls: { ca: '/etc/braid/tls/ca.pem', cert: '/etc/braid/tls/cloud.pem', key: '/etc/braid/tls/cloud.key' } },
    // Edges send data to the balancer's address, whichever replica answered the Hello.
    dataPlane: { listen: `0.0.0.0:${PORT.data}`, publicHost: IP.vip, tcpListen: '', tlsListen: '' },
    cluster: { address, forwardPort: PORT.forward, replicas: [IP.cloudA, IP.cloudB] },
    admin: { listen: `0.0.0.0:${PORT.cloudAdmin}` },
    log: { level: 'info' },
  };
}
const EDGE_CONFIG = {
  id: 'edge-1',
  control: { cloud: `${IP.vip}:${PORT.control}`, serverName: 'braid-cloud', tls: { ca: '/etc/braid/tls/ca.pem', cert: '/etc/braid/tls/edge.pem', key: '/etc/braid/tls/edge.key' } },
  carriers: [{ name: 'car0', interface: 'CAR0_IF' }, { name: 'car1', interface: 'CAR1_IF' }],
  interception: { clientSubnets: [NET.lan.subnet], multipathDestinations: [`${IP.server}/32`] },
  dataPlane: { racing: { cascade: ['udp'] } },
  admin: { listen: `0.0.0.0:${PORT.edgeAdmin}` },
  log: { level: 'info' },
};

// ---- helpers ---------------------------------------------------------------------------------

async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return (await r.json()) as T;
}
async function ready(url: string): Promise<true | undefined> {
  const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
  return r.status === 200 ? true : undefined;
}
const jsonLines = <T>(lines: string[]): T[] => lines.flatMap((l) => {
  try {
    return [JSON.parse(l) as T];
  } catch {
    return [];
  }
});

interface CloudStatus {
  sessions: { id: number; edge: string }[];
  paths: { session: number; name: string; state: string; transport: string | null; rxDataBytes: number; txDataBytes: number }[];
  cluster: { self: string; replicas: string[]; forwarded: number; relayed: number } | null;
}
interface EdgeStatus { sessionId: number | null; paths: { name: string; state: string; txDataBytes: number; rxDataBytes: number }[] }

function cleanup(): void {
  const ids = sh('podman', ['ps', '-a', '-q', '--filter', 'label=braid-test=containers-tc']).stdout.split('\n').filter(Boolean);
  if (ids.length) sh('podman', ['rm', '-f', '-t', '0', ...ids]);
  for (const n of Object.values(NET)) sh('podman', ['network', 'rm', '-f', n.name]);
}

describe('two cloud replicas behind a load balancer (testcontainers)', { timeout: 240_000 }, () => {
  let service: ChildProcess | undefined;
  let dir = '';
  let why: string | undefined;
  const started: StartedTestContainer[] = [];

  before(async () => {
    why = missing();
    if (why) return;
    if (!(await ping(SOCKET))) {
      // podman's Docker API for testcontainers, for this test only.
      mkdirSync('/run/podman', { recursive: true });
      service = spawn('podman', ['system', 'service', '--time=0', `unix://${SOCKET}`], { stdio: 'ignore' });
      const ok = await untilValue('podman system service', async () => ((await ping(SOCKET)) ? true : undefined), 10_000, 100).catch(() => false);
      if (!ok) why = `podman system service did not answer on ${SOCKET}`;
    }
    process.env.DOCKER_HOST = `unix://${SOCKET}`;
    process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
    process.env.TESTCONTAINERS_HOST_OVERRIDE = '127.0.0.1';
    cleanup();
    dir = mkdtempSync(join(tmpdir(), 'braid-tc-'));
  });
  after(async () => {
    for (const c of started.reverse()) await c.stop({ timeout: 1000 }).catch(() => undefined);
    if (why === undefined) cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (service?.pid) process.kill(service.pid, 'SIGTERM');
  });

  test('a session\'s paths reach different replicas; the transfer is byte-identical; the owner dies and traffic flows again within 3 s', async (t) => {
    if (!requirePodman(t, why)) return;
    must(sh('bash', [join(ROOT, 'deploy', 'build-image.sh'), IMAGE]), 'deploy/build-image.sh');
    const tls = join(dir, 'tls');
    must(sh('bash', [join(ROOT, 'scripts', 'gen-dev-certs.sh'), tls, '--cloud-san', 'DNS:braid-cloud', '--edge-id', 'edge-1']), 'gen-dev-certs');
    sh('chmod', ['-R', 'a+rX', dir]);
    writeFileSync(join(dir, 'cloud-a.yaml'), stringify(cloudConfig('cloud-a', IP.cloudA)));
    writeFileSync(join(dir, 'cloud-b.yaml'), stringify(cloudConfig('cloud-b', IP.cloudB)));
    writeFileSync(join(dir, 'edge.yaml'), stringify(EDGE_CONFIG));
    assert.ok(existsSync(join(tls, 'cloud.key')));
    for (const n of Object.values(NET)) must(sh('podman', ['network', 'create', '--label', 'braid-test=containers-tc', '--subnet', n.subnet, n.name]), `network ${n.name}`);
    const mount = { source: dir, target: '/etc/braid', mode: 'ro' as const };
    const logs: Record<'lb' | 'a' | 'b' | 'edge' | 'client' | 'server', string[]> = { lb: [], a: [], b: [], edge: [], client: [], server: [] };
    const start = async (c: Container): Promise<StartedTestContainer> => {
      const s = await c.start();
      started.push(s);
      return s;
    };
    const dump = () => Object.entries(logs).map(([k, v]) => `--- ${k}:\n${v.slice(-25).join('\n')}`).join('\n');

    try {
      await start(new Container().withName('braid-tc-server').networks([[NET.core, IP.server]]).node(SERVER_JS).collect(logs.server));
      const cloud = (name: 'a' | 'b', ip: string) => new Container().withName(`braid-tc-cloud-${name}`).networks([[NET.core, ip]]).tun()
        .sysctls({ 'net.ipv4.ip_forward': '1' }).withBindMounts([mount]).collect(logs[name])
        .withEntrypoint(['node']).withCommand(['/app/gateway-cloud/dist/main.js', '--config', `/etc/braid/cloud-${name}.yaml`]);
      const [, cloudB] = [await start(cloud('a', IP.cloudA)), await start(cloud('b', IP.cloudB))];
      void cloudB;
      for (const ip of [IP.cloudA, IP.cloudB]) await untilValue(`cloud ${ip} /readyz`, () => ready(`http://${ip}:${PORT.cloudAdmin}/readyz`), 30_000, 100);
      await start(new Container().withName('braid-tc-lb').networks([[NET.core, IP.vip], [NET.car0, IP.lbCar0], [NET.car1, IP.lbCar1]]).node(LB_JS).collect(logs.lb));
      await untilValue('balancer sees both replicas healthy', () => (jsonLines<{ health?: string; up?: boolean }>(logs.lb).filter((l) => l.up).length === 2 ? true : undefined), 10_000, 100);
      await start(new Container().withName('braid-tc-edge').networks([[NET.lan, IP.edgeLan], [NET.car0, IP.edgeCar0], [NET.car1, IP.edgeCar1]]).tun()
        .sysctls({ 'net.ipv4.ip_forward': '1' }).withBindMounts([mount]).node(EDGE_JS).collect(logs.edge));
      await untilValue('edge /readyz (session up)', () => ready(`http://${IP.edgeLan}:${PORT.edgeAdmin}/readyz`), 30_000, 100);
      // Both carriers up before traffic, so the download uses both.
      await untilValue('both edge paths up', async () => {
        const s = await getJson<EdgeStatus>(`http://${IP.edgeLan}:${PORT.edgeAdmin}/status`);
        return s.paths.length === 2 && s.paths.every((p) => p.state === 'up') ? true : undefined;
      }, 10_000, 100);
      await start(new Container().withName('braid-tc-client').networks([[NET.lan, IP.client]]).withAddedCapabilities('NET_ADMIN').node(CLIENT_JS).collect(logs.client));

      // ---- the transfer ----------------------------------------------------------------------
      const transfer = await untilValue('the client\'s download', () => jsonLines<{ transfer?: { who: string; bytes: number; sha256: string }; error?: string }>(logs.client)
        .map((l) => { if (l.error) throw new Error(`client: ${l.error}`); return l.transfer; }).find((x) => x !== undefined), 60_000, 100);
      assert.equal(transfer.bytes, PAYLOAD_BYTES);
      assert.equal(transfer.sha256, expectedPayloadSha(PAYLOAD_BYTES), 'payload arrived byte-identical');

      // ---- where the paths went ----------------------------------------------------------------
      const flows = jsonLines<{ flow?: string; replica?: string }>(logs.lb).filter((l) => l.flow !== undefined);
      // By network: podman's bridge masquerades like a carrier-grade NAT, so the balancer may see
      // the network's gateway address instead of the edge's.
      const flowOf = (net: { subnet: string }) => flows.find((f) => f.flow?.startsWith(net.subnet.replace(/0\/24$/, '')))?.replica;
      const [via0, via1] = [flowOf(NET.car0), flowOf(NET.car1)];
      assert.ok(via0 && via1, `the balancer saw both carriers' flows: ${JSON.stringify(flows)}`);
      assert.notEqual(via0, via1, 'the balancer handed the two paths of the session to different replicas');
      const statusOf = (ip: string) => getJson<CloudStatus>(`http://${ip}:${PORT.cloudAdmin}/status`);
      const [sa, sb] = [await statusOf(IP.cloudA), await statusOf(IP.cloudB)];
      const owner = sa.sessions.length === 1 ? IP.cloudA : IP.cloudB;
      const other = owner === IP.cloudA ? IP.cloudB : IP.cloudA;
      const [so, sother] = owner === IP.cloudA ? [sa, sb] : [sb, sa];
      assert.equal(so.sessions.length, 1, `one session on the owner: ${JSON.stringify(so.sessions)}`);
      assert.equal(sother.sessions.length, 0, 'no session on the other replica');
      assert.equal(transfer.who, owner, 'the server saw the owner\'s egress address: the merged stream left from the owner');
      assert.ok((sother.cluster?.forwarded ?? 0) > 0, `the other replica forwarded packets to the owner: ${JSON.stringify(sother.cluster)}`);
      assert.ok((sother.cluster?.relayed ?? 0) > 0, `the other replica relayed the owner's answers: ${JSON.stringify(sother.cluster)}`);
      const relayedPath = so.paths.find((p) => p.transport?.includes(`via replica ${other}`));
      assert.ok(relayedPath, `one of the owner's paths comes through the other replica: ${JSON.stringify(so.paths)}`);
      assert.ok(relayedPath.rxDataBytes > 0 && relayedPath.txDataBytes > 0, `the relayed path carried data both ways: ${JSON.stringify(relayedPath)}`);
      const edgeBefore = await getJson<EdgeStatus>(`http://${IP.edgeLan}:${PORT.edgeAdmin}/status`);
      for (const p of edgeBefore.paths) assert.ok(p.rxDataBytes > 0 && p.txDataBytes > 0, `carrier ${p.name} carried data both ways: ${JSON.stringify(p)}`);

      // ---- the owner dies ----------------------------------------------------------------------
      await untilValue('probes answered', () => (jsonLines<{ probe?: number }>(logs.client).some((l) => l.probe !== undefined) ? true : undefined), 10_000, 100);
      const ownerName = owner === IP.cloudA ? 'braid-tc-cloud-a' : 'braid-tc-cloud-b';
      // The budget counts from before the kill; only probes sent after it returned count as new traffic.
      const killStarted = Date.now();
      must(sh('podman', ['kill', '-s', 'KILL', ownerName]), `kill ${ownerName}`);
      const killedAt = Date.now();
      type Probe = { probe?: number; sent: number; got: number };
      const back = await untilValue('a probe sent after the kill to be answered',
        () => jsonLines<Probe>(logs.client).filter((l) => l.probe !== undefined && l.sent >= killedAt).sort((x, y) => x.got - y.got)[0], 15_000, 100);
      const rehomeMs = back.got - killStarted;
      console.log(`# re-homing: new traffic answered ${rehomeMs} ms after the owner was killed (budget ${REHOME_BUDGET_MS} ms)`);
      const sNew = await statusOf(other);
      assert.equal(sNew.sessions.length, 1, 'the session re-homed to the surviving replica');
      const edgeAfter = await getJson<EdgeStatus>(`http://${IP.edgeLan}:${PORT.edgeAdmin}/status`);
      assert.notEqual(edgeAfter.sessionId, edgeBefore.sessionId, 'the edge said Hello again');
      assert.equal(edgeAfter.sessionId, sNew.sessions[0]?.id);
      assert.ok(rehomeMs <= REHOME_BUDGET_MS, `traffic flowed again ${rehomeMs} ms after the replica died (budget ${REHOME_BUDGET_MS} ms)`);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${dump()}`);
    }
  });
});
