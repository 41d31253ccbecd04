// The chart in real containers: `helm template charts/braid | podman kube play` with the image
// deploy/build-image.sh builds offline. A client container reaches a server container through
// the edge pod, three podman networks acting as carriers, and the cloud pod; the transfer is
// byte-identical, every carrier carries part of it, and the server sees the cloud's address
// (the traffic really left through the tunnel). `podman kube down` then leaves no pod behind.
//
//   client ── lan ── edge ══ car0, car1, car2 ══ (host routes) ══ core ── cloud ── server
//
// Needs root and podman (scripts/setup-podman.sh). Without them the test skips with the reason,
// except under CI=true, where it fails.
//
// podman 4.3 (Debian 12) plays Pods, Deployments, ConfigMaps and Secrets but not DaemonSets:
// the DaemonSet's pod template is played as the one Pod its controller would create on this
// node, unchanged. Services, RBAC, NetworkPolicy and PDB have no podman equivalent and are
// left out (test/chart.test.ts checks them against the Kubernetes schema).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { stringify } from 'yaml';
import { ROOT, render, type K8sObject } from './chart-harness.js';
import { expectedPayloadSha } from './harness/payload.js';
import { isRoot } from './harness/root.js';
import { untilValue } from '../gateway-core/test/wait.js';

const LABEL = 'braid-test=containers';
const SECRETS = ['braid-cloud-tls', 'braid-edge-tls'];
const CONFIGMAPS = ['braid-cloud', 'braid-edge'];
const IMAGE = 'localhost/braid:dev';
const NET = {
  lan: { name: 'braid-t-lan', subnet: '172.28.10.0/24' },
  car: [0, 1, 2].map((i) => ({ name: `braid-t-car${i}`, subnet: `172.28.2${i}.0/24` })),
  core: { name: 'braid-t-core', subnet: '172.28.30.0/24' },
};
const CLOUD_IP = '172.28.30.10';
const SERVER_IP = '172.28.30.20';
const CLIENT_IP = '172.28.10.20';
const PORT = { edgeAdmin: 19464, cloudAdmin: 19465, control: 17443, data: 17000, forward: 17002 };
const PAYLOAD_BYTES = 4 * 1024 * 1024;

interface Run { status: number; stdout: string; stderr: string }
function sh(cmd: string, args: string[], input?: string): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 64 << 20, timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}
function podman(...args: string[]): Run {
  return sh('podman', args);
}
function must(r: Run, what: string): string {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** Why the test cannot run here, or undefined. */
function missing(): string | undefined {
  if (!isRoot()) return 'needs root (rootful podman, TUN, NET_ADMIN)';
  if (sh('podman', ['version', '--format', '{{.Client.Version}}']).status !== 0) return 'needs podman (scripts/setup-podman.sh)';
  return undefined;
}
function requirePodman(t: TestContext): boolean {
  const why = missing();
  if (why === undefined) return true;
  if (process.env.CI === 'true') throw new Error(`${why}, and CI=true: container tests must not be skipped in CI`);
  console.log(`# skipped ${t.name}: ${why}`);
  t.skip(why);
  return false;
}

/** Everything this test may have left behind by an earlier, interrupted run. */
function cleanup(): void {
  for (const pod of podman('pod', 'ps', '-a', '--filter', `label=${LABEL}`, '--format', '{{.Name}}').stdout.split('\n').filter(Boolean)) {
    podman('pod', 'rm', '-f', '-t', '2', pod);
  }
  for (const c of ['braid-t-client', 'braid-t-server']) podman('rm', '-f', '-t', '1', c);
  // kube play keeps each ConfigMap's and Secret's content in a volume of that name, which
  // kube down leaves behind and the next play would reuse, stale.
  for (const v of [...SECRETS, ...CONFIGMAPS]) podman('volume', 'rm', '-f', v);
  for (const n of [NET.lan, ...NET.car, NET.core]) podman('network', 'rm', '-f', n.name);
}

/** The Pod a DaemonSet's controller would create from its template on this node. */
function daemonSetPod(ds: K8sObject): K8sObject {
  const tpl = (ds.spec as { template: { metadata: K8sObject['metadata']; spec: unknown } }).template;
  return { apiVersion: 'v1', kind: 'Pod', metadata: { ...tpl.metadata, name: ds.metadata.name }, spec: tpl.spec };
}

/**
 * podman 4.3 resolves only metadata.name/uid Downward API fields; the kubelet also fills the namespace, spec.nodeName
 * and status.podIP. Give those what the kubelet would (this host's name; the pod IP is not
 * known before the pod exists, so an empty value, which the gateways do not read).
 */
function kubeletFieldRefs(podSpec: { containers: { env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[] }[] }): void {
  const filled: Record<string, string> = { 'spec.nodeName': hostname(), 'status.podIP': '', 'metadata.namespace': 'braid' };
  for (const c of podSpec.containers) {
    for (const e of c.env ?? []) {
      const path = e.valueFrom?.fieldRef?.fieldPath;
      if (path !== undefined && path in filled) {
        delete e.valueFrom;
        e.value = filled[path];
      }
    }
  }
}

/**
 * podman 4.3 mounts a Secret volume's files still base64-encoded (and ignores stringData), so
 * the gateways would read no PEM. Its ConfigMap volumes work: the test plays each Secret as a
 * ConfigMap of the same name holding the decoded files, exactly what the kubelet would mount.
 */
function secretAsConfigMap(secret: K8sObject): K8sObject {
  const data = (secret.data ?? {}) as Record<string, string>;
  return {
    apiVersion: 'v1', kind: 'ConfigMap', metadata: secret.metadata,
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])),
  };
}
type Volume = { name: string; secret?: { secretName: string; defaultMode?: number }; configMap?: { name: string; defaultMode?: number } };
function secretVolumesAsConfigMaps(podSpec: { volumes?: Volume[] }): void {
  for (const v of podSpec.volumes ?? []) {
    if (v.secret) {
      v.configMap = { name: v.secret.secretName, defaultMode: v.secret.defaultMode ?? 0o400 };
      delete v.secret;
    }
  }
}

/** One role's objects podman can play, Secrets and ConfigMaps first (pods mount them by name). */
function playable(objs: K8sObject[], component: 'edge' | 'cloud'): K8sObject[] {
  const mine = objs.filter((o) => o.metadata.labels?.['app.kubernetes.io/component'] === component);
  const out: K8sObject[] = [];
  for (const kind of ['Secret', 'ConfigMap', 'Deployment', 'DaemonSet']) {
    for (const o of mine.filter((x) => x.kind === kind)) {
      const obj = kind === 'DaemonSet' ? daemonSetPod(o) : o;
      const labels = { ...obj.metadata.labels, 'braid-test': 'containers' };
      if (obj.kind === 'Deployment') {
        // The label reaches the pod through the template (what `pod ps --filter label=` sees).
        const tpl = (obj.spec as { template: { metadata: { labels: Record<string, string> } } }).template;
        tpl.metadata.labels = { ...tpl.metadata.labels, 'braid-test': 'containers' };
      }
      const played = obj.kind === 'Secret' ? secretAsConfigMap(obj) : obj;
      const spec = obj.kind === 'Pod' ? obj.spec : obj.kind === 'Deployment' ? (obj.spec as { template: { spec: unknown } }).template.spec : undefined;
      if (spec) {
        kubeletFieldRefs(spec as Parameters<typeof kubeletFieldRefs>[0]);
        secretVolumesAsConfigMaps(spec as { volumes?: Volume[] });
      }
      out.push({ ...played, metadata: { ...played.metadata, labels } });
    }
  }
  return out;
}

async function httpGet(url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: r.status, body: await r.text() };
}


/** The (one) gateway container of a role, by the chart's component label. */
function containerOf(component: string): string {
  const names = must(podman('ps', '-a', '--filter', `label=app.kubernetes.io/component=${component}`, '--filter', `label=${LABEL}`,
    '--format', '{{.Names}}'), 'ps').split('\n').filter((n) => n && !n.endsWith('-infra'));
  if (names.length !== 1) throw new Error(`expected one ${component} container, found ${names.join(', ') || 'none'}`);
  return names[0] as string;
}

function podIp(container: string, network: string): string {
  const ip = must(podman('inspect', container, '--format', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`), `inspect ${container}`).trim();
  if (!ip) throw new Error(`${container} has no address on ${network}`);
  return ip;
}

// The server: a deterministic payload at /payload and, at /whoami, the address it sees.
const SERVER_JS = `
const http = require('node:http');
const size = ${PAYLOAD_BYTES};
const buf = Buffer.alloc(size);
let x = 12345;
for (let i = 0; i < size; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; buf[i] = x >>> 24; }
http.createServer((req, res) => {
  if (req.url === '/whoami') return res.end(req.socket.remoteAddress.replace('::ffff:', ''));
  res.setHeader('content-length', size); res.end(buf);
}).listen(8080, '0.0.0.0');
process.on('SIGTERM', () => process.exit(0));
`;
// The client: fetch through its default route (the edge) and print what it got.
const CLIENT_JS = `
const crypto = require('node:crypto');
(async () => {
  const who = await (await fetch('http://${SERVER_IP}:8080/whoami')).text();
  const body = Buffer.from(await (await fetch('http://${SERVER_IP}:8080/payload')).arrayBuffer());
  console.log(JSON.stringify({ who, bytes: body.length, sha256: crypto.createHash('sha256').update(body).digest('hex') }));
})().catch((e) => { console.error(e.message); process.exit(1); });
`;

describe('chart under podman kube play', { timeout: 300_000 }, () => {
  let dir = '';
  let files: { edge: string; cloud: string } | undefined;
  before(() => {
    if (missing() !== undefined) return;
    cleanup();
    dir = mkdtempSync(join(tmpdir(), 'braid-kube-'));
  });
  after(() => {
    if (missing() !== undefined) return;
    if (files) for (const f of [files.edge, files.cloud]) podman('kube', 'down', f);
    cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('edge and cloud pods from the chart start, get ready and carry traffic over three carriers', async (t) => {
    if (!requirePodman(t)) return;
    must(sh('bash', [join(ROOT, 'deploy', 'build-image.sh'), IMAGE]), 'deploy/build-image.sh');

    for (const n of [NET.lan, ...NET.car, NET.core]) must(podman('network', 'create', '--label', LABEL, '--subnet', n.subnet, n.name), `network ${n.name}`);

    // One render for both roles, so the generated mTLS material shares one CA.
    const objs = render([
      '--set', `image.repository=${IMAGE.split(':')[0]}`, '--set', `image.tag=${IMAGE.split(':')[1]}`, '--set', 'image.pullPolicy=Never',
      '--set', 'cloud.replicas=1', '--set', 'edge.network.mode=multus',
      '--set', `edge.cloudAddress=${CLOUD_IP}:${PORT.control}`, '--set', 'edge.serverName=braid-cloud-grpc.braid.svc',
      // What the data Service's load balancer address would be: the one cloud pod's own.
      '--set', `cloud.publicHost=${CLOUD_IP}`,
      '--set-json', `edge.carriers=${JSON.stringify(NET.car.map((_, i) => ({ name: `car${i}`, interface: `wan${i}`, metadata: { technology: 'lte', mcc: '001', mnc: `0${i + 1}` } })))}`,
      '--set-json', `edge.interception.clientSubnets=["${NET.lan.subnet}"]`,
      '--set', 'edge.log.level=debug', '--set', 'cloud.log.level=debug',
      // podman 4.3 publishes every containerPort on the host as well: ports nothing else here uses.
      '--set', `edge.adminPort=${PORT.edgeAdmin}`, '--set', `cloud.adminPort=${PORT.cloudAdmin}`,
      '--set', `cloud.controlPort=${PORT.control}`, '--set', `cloud.dataPort=${PORT.data}`, '--set', `cloud.forwardPort=${PORT.forward}`,
    ]);
    files = { edge: join(dir, 'edge.yaml'), cloud: join(dir, 'cloud.yaml') };
    writeFileSync(files.cloud, playable(objs, 'cloud').map((o) => stringify(o)).join('---\n'));
    writeFileSync(files.edge, playable(objs, 'edge').map((o) => stringify(o)).join('---\n'));

    must(podman('kube', 'play', '--network', NET.core.name, '--ip', CLOUD_IP, files.cloud), 'kube play cloud');
    must(podman('kube', 'play',
      '--network', `${NET.lan.name}:interface_name=lan0`,
      ...NET.car.flatMap((n, i) => ['--network', `${n.name}:interface_name=wan${i}`]),
      files.edge), 'kube play edge');
    const cloudCtr = containerOf('cloud');
    const edgeCtr = containerOf('edge');
    const edgeLan = podIp(edgeCtr, NET.lan.name);

    const logs = (c: string) => podman('logs', '--tail', '40', c).stderr + podman('logs', '--tail', '40', c).stdout;
    try {
      // Startup, liveness and readiness, as the kubelet would probe them (distinct endpoints).
      await untilValue('cloud /readyz', async () => ((await httpGet(`http://${CLOUD_IP}:${PORT.cloudAdmin}/readyz`)).status === 200 ? true : undefined), 60_000, 250);
      assert.equal((await httpGet(`http://${CLOUD_IP}:${PORT.cloudAdmin}/startupz`)).status, 200);
      assert.equal((await httpGet(`http://${CLOUD_IP}:${PORT.cloudAdmin}/livez`)).status, 200);
      // What the chart's ServiceMonitor/PodMonitor scrape.
      assert.match((await httpGet(`http://${CLOUD_IP}:${PORT.cloudAdmin}/metrics`)).body, /^# (HELP|TYPE) /m);
      await untilValue('edge /readyz (session up)', async () => ((await httpGet(`http://${edgeLan}:${PORT.edgeAdmin}/readyz`)).status === 200 ? true : undefined), 60_000, 250);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- cloud:\n${logs(cloudCtr)}\n--- edge:\n${logs(edgeCtr)}`);
    }

    // Server beside the cloud; client behind the edge (its default route is the edge's lan0).
    must(podman('run', '-d', '--name', 'braid-t-server', '--label', LABEL, '--network', NET.core.name, '--ip', SERVER_IP, IMAGE,
      'node', '-e', SERVER_JS), 'server');
    await untilValue('server', async () => ((await httpGet(`http://${SERVER_IP}:8080/whoami`)).status === 200 ? true : undefined), 20_000, 250);
    // The image has no shell: node sets the client's default route with ip, then fetches.
    const got = must(podman('run', '--rm', '--name', 'braid-t-client', '--label', LABEL, '--network', NET.lan.name, '--ip', CLIENT_IP,
      '--cap-drop', 'ALL', '--cap-add', 'NET_ADMIN', '--entrypoint', 'node', IMAGE, '-e',
      `require('node:child_process').execFileSync('ip', ['route', 'replace', 'default', 'via', '${edgeLan}']);\n${CLIENT_JS}`), 'client');
    const res = JSON.parse(got.trim().split('\n').pop() as string) as { who: string; bytes: number; sha256: string };
    assert.equal(res.bytes, PAYLOAD_BYTES);
    assert.equal(res.sha256, expectedPayloadSha(PAYLOAD_BYTES), 'payload arrived byte-identical');
    // The server saw the cloud (its egress NAT), not the client or the host: the bytes went
    // through the tunnel, not around it.
    assert.equal(res.who, CLOUD_IP);

    // Every carrier carried part of it.
    const status = JSON.parse((await httpGet(`http://${edgeLan}:${PORT.edgeAdmin}/status`)).body) as {
      paths: { name: string; state: string; txDataBytes: number; rxDataBytes: number }[];
    };
    assert.deepEqual(status.paths.map((p) => p.name), ['car0', 'car1', 'car2']);
    for (const p of status.paths) {
      assert.equal(p.state, 'up', `carrier ${p.name}: ${JSON.stringify(p)}`);
      assert.ok(p.rxDataBytes + p.txDataBytes > 0, `carrier ${p.name} carried no data: ${JSON.stringify(p)}`);
    }

    // kube down: the pods and their containers are gone.
    for (const f of [files.edge, files.cloud]) must(podman('kube', 'down', f), `kube down ${f}`);
    files = undefined;
    const left = podman('ps', '-a', '--filter', 'name=braid-(edge|cloud)', '--format', '{{.Names}}').stdout.trim();
    assert.equal(left, '', `containers left after kube down: ${left}`);
    const pods = podman('pod', 'ps', '-a', '--filter', 'name=braid-', '--format', '{{.Name}}').stdout.trim();
    assert.equal(pods, '', `pods left after kube down: ${pods}`);
  });
});
