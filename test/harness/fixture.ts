// The usual end-to-end set-up in one place: a topology, nginx serving random files, the two
// gateways up and ready, and one stop() that undoes all of it (also after a failed start).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTopology, type CarrierSpec, type Topology } from './topology.js';
import { makeRandomFile, startNginx, type Nginx } from './apps.js';
import { startGateways, type GatewayOptions, type Gateways } from './gateways.js';

export interface TunnelFixture {
  dir: string;
  topo: Topology;
  nginx: Nginx;
  gw: Gateways;
  /** sha256 of each file nginx serves, by name. */
  sha: Record<string, string>;
  stop(): Promise<void>;
}

export interface TunnelFixtureOptions {
  /** Temp-dir prefix, e.g. "braid-failover". */
  name: string;
  carriers: CarrierSpec[];
  /** Files for nginx to serve: name -> size in bytes. */
  files?: Record<string, number>;
  /** Runs after the topology and nginx exist, before the gateways start (e.g. firewall rules). */
  beforeGateways?: (topo: Topology) => Promise<void>;
  /** Gateway options (the multipath destination defaults to the server's first address). */
  gateways?: (topo: Topology) => Omit<GatewayOptions, 'dir'>;
  readyTimeoutMs?: number;
}

export async function startTunnelFixture(opts: TunnelFixtureOptions): Promise<TunnelFixture> {
  const dir = await mkdtemp(join(tmpdir(), `${opts.name}-`));
  const parts: Partial<TunnelFixture> = { dir, sha: {} };
  const stop = async (): Promise<void> => {
    await parts.gw?.stop();
    await parts.nginx?.stop();
    await parts.topo?.destroy();
    // BRAID_KEEP_TEST_DIR=1 keeps the run directory (gateway logs, configs) for a post-mortem.
    if (process.env.BRAID_KEEP_TEST_DIR === '1') console.log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  };
  try {
    const topo = await createTopology({ carriers: opts.carriers });
    parts.topo = topo;
    const nginx = await startNginx(topo, dir);
    parts.nginx = nginx;
    for (const [name, bytes] of Object.entries(opts.files ?? {})) parts.sha![name] = await makeRandomFile(nginx.root, name, bytes);
    await opts.beforeGateways?.(topo);
    const gw = await startGateways(topo, { dir, multipathDestinations: [`${topo.addr.server}/32`], ...opts.gateways?.(topo) });
    parts.gw = gw;
    await gw.waitReady(opts.readyTimeoutMs ?? 30_000);
    return { dir, topo, nginx, gw, sha: parts.sha!, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
