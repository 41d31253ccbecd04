// S2-13 in network namespaces: an edge with two PoPs and two servers, each PoP near one server
// and far from the other. The distances are real delays on the PoP-server links, made by the
// user-space link emulator (test/emulator; the kernel here has no netem), so both the PoPs'
// measurements (TCP connect time) and the traffic feel them.
//
//   client ── edge ══ wan0 ══ inet ── popA ── ra1 (d) ── s1      popA ── ra2 (d) ── s2
//                                 └── popB ── rb1 (d) ── s1      popB ── rb2 (d) ── s2
//
// Each destination's traffic must go through its nearer PoP (the PoPs' tunnel counters), and the
// choice must follow when the delays change.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { addAddress, addNamespace, addVethPair, deleteNamespace, execIn, inNs, replaceRoute, sysctl } from './harness/netns.js';
import { ManagedProcess } from './harness/process.js';
import { requireRoot } from './harness/root.js';
import { untilValue } from '../gateway-core/test/wait.js';

const REPO_ROOT = resolve(import.meta.dirname, '..');
const P = `mp${process.pid % 10000}`;
const NS = {
  cl: `${P}cl`, ed: `${P}ed`, inet: `${P}in`, pa: `${P}pa`, pb: `${P}pb`,
  ra1: `${P}ra1`, ra2: `${P}ra2`, rb1: `${P}rb1`, rb2: `${P}rb2`, s1: `${P}s1`, s2: `${P}s2`,
};
const S1 = '10.78.1.1';
const S2 = '10.78.2.1';
/** PoP -> router -> server legs: [pop ns, pop iface, router ns, server ns, server iface, n] (subnets 10.77.n and 10.77.n+10). */
const LEGS = [
  { pop: 'pa', router: 'ra1', server: 's1', dst: S1, n: 10 },
  { pop: 'pa', router: 'ra2', server: 's2', dst: S2, n: 11 },
  { pop: 'pb', router: 'rb1', server: 's1', dst: S1, n: 12 },
  { pop: 'pb', router: 'rb2', server: 's2', dst: S2, n: 13 },
] as const;
type Router = (typeof LEGS)[number]['router'];

const procs: ManagedProcess[] = [];
let dir = '';

function spawnIn(ns: string, argv: string[], name: string): ManagedProcess {
  const p = new ManagedProcess(inNs(ns, argv), { name, cwd: REPO_ROOT });
  procs.push(p);
  return p;
}
const tsx = (main: string, ...args: string[]) => [process.execPath, '--conditions=source', '--import', 'tsx', main, ...args];

async function buildTopology(): Promise<void> {
  for (const ns of Object.values(NS)) await addNamespace(ns);
  await addVethPair(NS.cl, 'lan', NS.ed, 'lan');
  await addAddress(NS.cl, 'lan', '10.76.1.2/24');
  await addAddress(NS.ed, 'lan', '10.76.1.1/24');
  await replaceRoute(NS.cl, { to: 'default', via: '10.76.1.1' });
  await addVethPair(NS.ed, 'wan0', NS.inet, 'ed');
  await addAddress(NS.ed, 'wan0', '10.76.2.2/24');
  await addAddress(NS.inet, 'ed', '10.76.2.1/24');
  await replaceRoute(NS.ed, { to: 'default', via: '10.76.2.1', dev: 'wan0' });
  for (const [pop, n] of [['pa', 3], ['pb', 4]] as const) {
    await addVethPair(NS.inet, pop, NS[pop], 'upl');
    await addAddress(NS.inet, pop, `10.76.${n}.1/24`);
    await addAddress(NS[pop], 'upl', `10.76.${n}.2/24`);
    await replaceRoute(NS[pop], { to: 'default', via: `10.76.${n}.1` });
  }
  for (const s of ['s1', 's2'] as const) await addAddress(NS[s], 'lo', `${s === 's1' ? S1 : S2}/32`);
  for (const l of LEGS) {
    // PoP side of the router is "edge", server side "cloud": the emulator's names.
    await addVethPair(NS[l.pop], l.server, NS[l.router], 'edge');
    await addAddress(NS[l.pop], l.server, `10.77.${l.n}.1/24`);
    await addAddress(NS[l.router], 'edge', `10.77.${l.n}.2/24`);
    await replaceRoute(NS[l.pop], { to: `${l.dst}/32`, via: `10.77.${l.n}.2` });
    const sIf = l.pop === 'pa' ? 'via-a' : 'via-b';
    await addVethPair(NS[l.router], 'cloud', NS[l.server], sIf);
    await addAddress(NS[l.router], 'cloud', `10.77.${l.n + 10}.1/24`);
    await addAddress(NS[l.server], sIf, `10.77.${l.n + 10}.2/24`);
    await replaceRoute(NS[l.router], { to: `${l.dst}/32`, via: `10.77.${l.n + 10}.2` });
    await replaceRoute(NS[l.server], { to: `10.77.${l.n}.0/24`, via: `10.77.${l.n + 10}.1` });
  }
  for (const ns of [NS.ed, NS.inet, NS.pa, NS.pb, NS.ra1, NS.ra2, NS.rb1, NS.rb2]) {
    await sysctl(ns, { 'net.ipv4.ip_forward': 1, 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.default.rp_filter': 0 });
  }
}

const emulators = new Map<Router, ManagedProcess>();
/** (Re)starts the emulator of one PoP-server link with a one-way delay each way. */
async function setDelay(router: Router, delayMs: number): Promise<void> {
  await emulators.get(router)?.stop();
  const spec = join(dir, `${router}.json`);
  writeFileSync(spec, JSON.stringify({ up: { rateMbps: 200, delayMs }, down: { rateMbps: 200, delayMs } }));
  const p = spawnIn(NS[router], tsx('test/emulator/main.ts', '--spec', spec, '--edge', 'edge', '--cloud', 'cloud', '--stats-ms', '60000'), `emulator ${router}`);
  emulators.set(router, p);
  await p.waitFor(/emulator ready/, 20_000);
}

interface CloudStatus { sessions: unknown[]; tunnel: { rxBytes: number; txBytes: number } }
async function cloudBytes(pop: 'pa' | 'pb'): Promise<number> {
  const r = await execIn(NS[pop], ['curl', '-sS', '--fail', '--max-time', '2', 'http://127.0.0.1:9465/status']);
  const s = JSON.parse(r.stdout) as CloudStatus;
  return s.tunnel.rxBytes + s.tunnel.txBytes;
}

/** From the client: `count` UDP datagrams of 1000 bytes to dst's echo port; how many came back. */
async function blast(dst: string, count: number): Promise<{ sent: number; echoed: number }> {
  const js = `
const s = require('node:dgram').createSocket('udp4'); let echoed = 0, sent = 0;
s.on('message', () => echoed++);
const buf = Buffer.alloc(1000, 7);
const t = setInterval(() => { for (let i = 0; i < 5 && sent < ${count}; i++) { s.send(buf, 9000, '${dst}'); sent++; } if (sent >= ${count}) { clearInterval(t); setTimeout(() => { console.log(JSON.stringify({ sent, echoed })); process.exit(0); }, 1500); } }, 5);`;
  const r = await execIn(NS.cl, [process.execPath, '-e', js], { timeoutMs: 30_000 });
  return JSON.parse(r.stdout.trim()) as { sent: number; echoed: number };
}

interface ChoiceLine { msg?: string; destination?: string; to?: string; from?: string | null; totalsMs?: Record<string, number>; time?: number }
function choices(edge: ManagedProcess): ChoiceLine[] {
  return edge.output().split('\n').flatMap((l) => {
    try {
      const o = JSON.parse(l) as ChoiceLine;
      return o.msg === 'PoP choice' ? [o] : [];
    } catch {
      return [];
    }
  });
}
const current = (edge: ManagedProcess, dst: string) => choices(edge).filter((c) => c.destination === `${dst}/32`).at(-1)?.to;

/** Which PoP carried a burst to `dst`: the one whose tunnel counters grew by (nearly) the burst. */
async function carriedBy(dst: string): Promise<{ pop: 'pa' | 'pb'; grew: Record<string, number>; echoed: number }> {
  const before = { pa: await cloudBytes('pa'), pb: await cloudBytes('pb') };
  const r = await blast(dst, 400);
  const grew = { pa: (await cloudBytes('pa')) - before.pa, pb: (await cloudBytes('pb')) - before.pb };
  // 400 x 1000 bytes up and the echoes down: at least the upstream 400 kB through the chosen PoP.
  const pop = grew.pa > grew.pb ? 'pa' : 'pb';
  const other = pop === 'pa' ? grew.pb : grew.pa;
  assert.ok(grew[pop] >= 400 * 1000, `${dst}: ${pop} carried the burst: ${JSON.stringify(grew)}`);
  assert.ok(other < 20_000, `${dst}: the other PoP carried (almost) nothing of it (keepalives only): ${JSON.stringify(grew)}`);
  assert.ok(r.echoed >= 0.9 * r.sent, `${dst}: echoes came back: ${JSON.stringify(r)}`);
  return { pop, grew, echoed: r.echoed };
}

after(async () => {
  for (const p of procs.reverse()) await p.stop().catch(() => undefined);
  for (const ns of Object.values(NS)) await deleteNamespace(ns);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('multi-PoP selection in namespaces (S2-13)', { timeout: 120_000 }, () => {
  test('each destination through its nearer PoP (counters); the choice follows a change of delays', async (t) => {
    if (!requireRoot(t)) return;
    dir = mkdtempSync(join(tmpdir(), 'braid-mp-'));
    await buildTopology();
    // Phase 1: popA is near s1 (10 ms round trip) and far from s2 (50 ms); popB the other way round.
    await Promise.all([setDelay('ra1', 5), setDelay('ra2', 25), setDelay('rb1', 25), setDelay('rb2', 5)]);
    for (const s of ['s1', 's2'] as const) {
      // Bound to the service address, so the answers leave from it (the PoPs' NAT expects that).
      spawnIn(NS[s], [process.execPath, '-e', `const s=require('node:dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(m,r.port,r.address));s.bind(9000,'${s === 's1' ? S1 : S2}');`], `echo ${s}`);
    }
    const certs = join(dir, 'certs');
    execFileSync('bash', [join(REPO_ROOT, 'scripts', 'gen-dev-certs.sh'), certs, '--cloud-san', 'DNS:braid-cloud', '--edge-id', 'edge-1']);
    const tls = (who: 'cloud' | 'edge') => ({ ca: join(certs, 'ca.pem'), cert: join(certs, `${who}.pem`), key: join(certs, `${who}.key`) });
    for (const [pop, n, pool] of [['pa', 3, '100.64.0.0/16'], ['pb', 4, '100.65.0.0/16']] as const) {
      const f = join(dir, `${pop}.yaml`);
      writeFileSync(f, stringify({
        id: pop, control: { listen: '0.0.0.0:7443', tls: tls('cloud') },
        dataPlane: { listen: '0.0.0.0:7000', publicHost: `10.76.${n}.2`, tcpListen: '', tlsListen: '' },
        tunnel: { addressPool: pool }, admin: { listen: '127.0.0.1:9465' }, log: { level: 'info' },
      }));
      spawnIn(NS[pop], tsx('gateway-cloud/src/main.ts', '--config', f), `cloud ${pop}`);
    }
    await untilValue('both PoPs ready', async () => (await Promise.all(['pa', 'pb'].map((p) => execIn(NS[p as 'pa'], ['curl', '-sf', 'http://127.0.0.1:9465/readyz'], { allowFailure: true }))))
      .every((r) => r.code === 0) ? true : undefined, 30_000, 100);
    const edgeCfg = join(dir, 'edge.yaml');
    writeFileSync(edgeCfg, stringify({
      id: 'edge-1',
      control: { cloud: '10.76.3.2:7443', serverName: 'braid-cloud', tls: tls('edge') },
      carriers: [{ name: 'c0', interface: 'wan0' }],
      interception: { clientSubnets: ['10.76.1.0/24'] },
      dataPlane: { racing: { cascade: ['udp'] } },
      pops: [{ name: 'pa', cloud: '10.76.3.2:7443' }, { name: 'pb', cloud: '10.76.4.2:7443' }],
      // 10 ms: this shared 2-core machine adds a few ms of scheduling noise to single samples.
      popSelection: { intervalMs: 500, hysteresisMs: 10, destinations: [{ prefix: `${S1}/32`, probe: `${S1}:80` }, { prefix: `${S2}/32`, probe: `${S2}:80` }] },
      log: { level: 'info' },
    }));
    const edge = spawnIn(NS.ed, tsx('gateway-edge/src/main.ts', '--config', edgeCfg), 'edge');
    try {
      // Both PoPs up and measured: s1 through popA, s2 through popB.
      await untilValue('s1 via pa and s2 via pb', () => (current(edge, S1) === 'pa' && current(edge, S2) === 'pb' ? true : undefined), 30_000, 100);
      const c1 = choices(edge).filter((c) => c.destination === `${S1}/32`).at(-1);
      console.log(`# phase 1 totals (ms): s1 ${JSON.stringify(c1?.totalsMs)}`);
      assert.equal((await carriedBy(S1)).pop, 'pa');
      assert.equal((await carriedBy(S2)).pop, 'pb');

      // Phase 2: popA's way to s1 gets long (80 ms round trip), popB's short (4 ms).
      const changedAt = Date.now();
      await Promise.all([setDelay('ra1', 40), setDelay('rb1', 2)]);
      const restarted = Date.now();
      await untilValue('s1 moved to pb', () => (current(edge, S1) === 'pb' ? true : undefined), 20_000, 100);
      const moved = choices(edge).filter((c) => c.destination === `${S1}/32` && c.to === 'pb').at(-1);
      console.log(`# phase 2: s1 moved to pb ${(moved?.time ?? Date.now()) - restarted} ms after the new delays were in place (emulators restarted in ${restarted - changedAt} ms); totals ${JSON.stringify(moved?.totalsMs)}`);
      assert.equal(current(edge, S2), 'pb', 's2 stays with pb');
      assert.equal((await carriedBy(S1)).pop, 'pb');
      assert.equal((await carriedBy(S2)).pop, 'pb');
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- edge:\n${edge.output().split('\n').slice(-30).join('\n')}`);
    }
  });
});
