// Starts the real Braid gateways in the topology: the cloud in the cloud namespace, the edge in
// the edge namespace, with dev certificates, YAML configs and logs in a run directory.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { REPO_ROOT, sleep } from './apps.js';
import { run } from './netns.js';
import type { ManagedProcess } from './process.js';
import type { Topology } from './topology.js';

export const CLOUD_SERVER_NAME = 'braid-cloud';
export const EDGE_ADMIN = '127.0.0.1:9464';
export const CLOUD_ADMIN = '127.0.0.1:9465';

export interface PathStatus {
  name: string;
  state: string;
  txBytes: number;
  rxBytes: number;
  txPackets: number;
  rxPackets: number;
  rttMs: number | null;
  rateMbps: number | null;
  /** Cloud only: the session the path belongs to. */
  session?: string;
}

export interface GatewayStatus {
  role: 'edge' | 'cloud';
  ready: boolean;
  paths: PathStatus[];
  tunnel: { rxPackets: number; txPackets: number; rxBytes: number; txBytes: number };
  drops: Record<string, number>;
  /** Edge only: the TCP relay's counts (docs/tcp-relay.md); null while the session does not relay. */
  tcpRelay?: { active: number; opened: number; accepted: number; refused: number } | null;
}

/** A YAML-able config tree; overrides are deep-merged into the defaults (arrays replace). */
export type ConfigTree = { [key: string]: unknown };

export interface GatewayOptions {
  /** Run directory: certificates, configs and logs go here. */
  dir: string;
  edgeId?: string;
  /** Destinations the edge bonds (default: the server's first address only). */
  multipathDestinations?: string[];
  logLevel?: string;
  /** Deep-merged over the generated configs. */
  edge?: ConfigTree;
  cloud?: ConfigTree;
}

export interface Gateways {
  edge: ManagedProcess;
  cloud: ManagedProcess;
  logs: { edge: string; cloud: string };
  configs: { edge: string; cloud: string };
  certsDir: string;
  edgeStatus(): Promise<GatewayStatus>;
  cloudStatus(): Promise<GatewayStatus>;
  /** Polls until the edge reports ready with every path "up"; throws with both logs' tails. */
  waitReady(timeoutMs: number): Promise<GatewayStatus>;
  stop(): Promise<void>;
}

export async function generateCerts(outDir: string, edgeId: string, topo: Topology): Promise<void> {
  await run(['bash', join(REPO_ROOT, 'scripts', 'gen-dev-certs.sh'), outDir,
    '--cloud-san', `DNS:${CLOUD_SERVER_NAME},IP:${topo.addr.cloudPublic},IP:127.0.0.1`, '--edge-id', edgeId]);
}

export function cloudConfig(topo: Topology, certsDir: string, logLevel = 'info'): ConfigTree {
  return {
    control: {
      listen: `${topo.addr.cloudPublic}:7443`,
      tls: { ca: join(certsDir, 'ca.pem'), cert: join(certsDir, 'cloud.pem'), key: join(certsDir, 'cloud.key') },
    },
    dataPlane: { listen: `${topo.addr.cloudPublic}:7000` },
    tunnel: { device: 'braid0', addressPool: '100.64.0.0/16' },
    egress: { nat: true },
    admin: { listen: CLOUD_ADMIN },
    log: { level: logLevel },
  };
}

export function edgeConfig(topo: Topology, certsDir: string, opts: { id: string; multipathDestinations: string[]; logLevel?: string }): ConfigTree {
  return {
    id: opts.id,
    control: {
      cloud: `${topo.addr.cloudPublic}:7443`,
      serverName: CLOUD_SERVER_NAME,
      tls: { ca: join(certsDir, 'ca.pem'), cert: join(certsDir, 'edge.pem'), key: join(certsDir, 'edge.key') },
    },
    carriers: topo.carriers.map((c, i) => ({ name: c.name, interface: topo.iface.edgeWan(i) })),
    tunnel: { device: 'braid0' },
    interception: { clientSubnets: [topo.addr.clientSubnet], multipathDestinations: opts.multipathDestinations },
    admin: { listen: EDGE_ADMIN },
    log: { level: opts.logLevel ?? 'info' },
  };
}

export function deepMerge(base: ConfigTree, over: ConfigTree | undefined): ConfigTree {
  if (!over) return base;
  const out: ConfigTree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isTree(b) && isTree(v) ? deepMerge(b, v) : v;
  }
  return out;
}

function isTree(v: unknown): v is ConfigTree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** GET the admin /status inside a namespace (curl: node cannot connect into another netns). */
export async function fetchStatus(topo: Topology, ns: string, listen: string): Promise<GatewayStatus> {
  const r = await topo.exec(ns, ['curl', '-sS', '--fail', '--max-time', '2', `http://${listen}/status`], { allowFailure: true, timeoutMs: 5000 });
  if (r.code !== 0) throw new Error(`status ${ns} ${listen}: curl exit ${r.code}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as GatewayStatus;
}

function gatewayArgv(pkg: 'gateway-cloud' | 'gateway-edge', config: string): string[] {
  return [process.execPath, '--conditions=source', '--import', 'tsx', join(pkg, 'src', 'main.ts'), '--config', config];
}

export async function startGateways(topo: Topology, opts: GatewayOptions): Promise<Gateways> {
  const edgeId = opts.edgeId ?? 'demo-edge';
  const certsDir = join(opts.dir, 'certs');
  await mkdir(certsDir, { recursive: true });
  await generateCerts(certsDir, edgeId, topo);

  const configs = { cloud: join(opts.dir, 'cloud.yaml'), edge: join(opts.dir, 'edge.yaml') };
  const logs = { cloud: join(opts.dir, 'cloud.log'), edge: join(opts.dir, 'edge.log') };
  const cloudCfg = deepMerge(cloudConfig(topo, certsDir, opts.logLevel), opts.cloud);
  const edgeCfg = deepMerge(edgeConfig(topo, certsDir, {
    id: edgeId,
    multipathDestinations: opts.multipathDestinations ?? [`${topo.addr.server}/32`],
    ...(opts.logLevel ? { logLevel: opts.logLevel } : {}),
  }), opts.edge);
  await writeFile(configs.cloud, stringify(cloudCfg));
  await writeFile(configs.edge, stringify(edgeCfg));

  const cloud = topo.spawn(topo.ns.cloud, gatewayArgv('gateway-cloud', configs.cloud), { name: 'cloud', cwd: REPO_ROOT, logFile: logs.cloud });
  let edge: ManagedProcess | undefined;
  try {
    // The edge retries its control connection anyway; waiting for the cloud's admin endpoint
    // first just keeps the edge log free of connection-refused noise.
    await waitFor(async () => {
      if (!cloud.running) throw new Fatal('cloud gateway exited');
      await fetchStatus(topo, topo.ns.cloud, CLOUD_ADMIN);
      return true;
    }, 20_000).catch(() => undefined);
    if (!cloud.running) throw new Error(`cloud gateway exited (${cloud.exitCode}):\n${cloud.tail(40)}`);
    edge = topo.spawn(topo.ns.edge, gatewayArgv('gateway-edge', configs.edge), { name: 'edge', cwd: REPO_ROOT, logFile: logs.edge });
  } catch (err) {
    await topo.release(cloud);
    throw err;
  }
  const edgeProc = edge;

  const tails = (): string =>
    `--- edge log (${logs.edge}) ---\n${edgeProc.tail(40)}\n--- cloud log (${logs.cloud}) ---\n${cloud.tail(40)}`;

  return {
    edge: edgeProc,
    cloud,
    logs,
    configs,
    certsDir,
    edgeStatus: () => fetchStatus(topo, topo.ns.edge, EDGE_ADMIN),
    cloudStatus: () => fetchStatus(topo, topo.ns.cloud, CLOUD_ADMIN),
    async waitReady(timeoutMs: number): Promise<GatewayStatus> {
      let last: GatewayStatus | undefined;
      let lastErr = '';
      try {
        return await waitFor(async () => {
          for (const p of [edgeProc, cloud]) {
            if (!p.running) throw new Fatal(`${p.name} gateway exited (${p.exitCode})`);
          }
          try {
            last = await fetchStatus(topo, topo.ns.edge, EDGE_ADMIN);
          } catch (err) {
            lastErr = (err as Error).message;
            return undefined;
          }
          const allUp = last.paths.length > 0 && last.paths.every((p) => p.state === 'up');
          return last.ready && allUp ? last : undefined;
        }, timeoutMs);
      } catch (err) {
        const why = err instanceof Fatal ? err.message : `not ready within ${timeoutMs} ms`;
        const seen = last ? `last edge status: ${JSON.stringify(last)}` : `no edge status (${lastErr})`;
        throw new Error(`gateways: ${why}; ${seen}\n${tails()}`);
      }
    },
    async stop(): Promise<void> {
      // Edge first: it says goodbye to a cloud that is still there.
      await topo.release(edgeProc);
      await topo.release(cloud);
    },
  };
}

class Fatal extends Error {}

/** Calls fn every 200 ms until it returns a value; Fatal errors end the wait at once. */
async function waitFor<T>(fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      if (err instanceof Fatal) throw err;
      lastErr = err;
    }
    await sleep(200);
  }
  throw lastErr instanceof Error ? lastErr : new Error(`timed out after ${timeoutMs} ms`);
}
