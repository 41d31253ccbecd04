// Foundation benchmark: what the tunnel gives a host behind it, measured in one run.
//
//   node --conditions=source --import tsx bench/foundation.ts [--out FILE] [--seconds N] [--single-seconds M]
//
// Part 1, bonded goodput: three carriers tbf-shaped at 20, 10 and 5 Mbit/s; iperf3 -P 4 from the
// client namespace to the server, download (-R) and upload, through the Braid tunnel; and for
// comparison the best single carrier without a tunnel (the non-multipath server address, which
// the edge routes over carrier 0 = 20 Mbit/s).
// Part 2, one unshaped veth carrier: iperf3 -P 1 and -P 4 both ways, client namespace -> server
// namespace, with no tunnel (the ceiling), through OpenVPN (UDP, AES-256-GCM) and through Braid,
// with the CPU time and memory of the tunnel processes.
//
// Writes a JSON result (default bench/results/foundation-<date>.json) and prints Markdown tables.
// Needs root (namespaces, TUN). Exit codes: 0 all measured, 1 some measurement failed (the result
// is still written, with the error), 2 cannot run here (not root, missing tool, bad arguments).
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, iperfTcp, startIperfServer, type IperfServer } from '../test/harness/apps.js';
import { startGateways, type Gateways } from '../test/harness/gateways.js';
import { linkCounters } from '../test/harness/netns.js';
import { isRoot } from '../test/harness/root.js';
import { createTopology, type Topology } from '../test/harness/topology.js';
import { renderMarkdown } from './lib/markdown.js';
import { OPENVPN_ADDR, OPENVPN_BIN, OPENVPN_DEV, makeOpenVpnCerts, startOpenVpn } from './lib/openvpn.js';
import { startCpuMeter } from './lib/proc-stats.js';
import type { FoundationResult, Measurement } from './lib/result.js';

const HELP = `Braid foundation benchmark (bonded goodput; one carrier: raw vs OpenVPN vs Braid).

usage: node --conditions=source --import tsx bench/foundation.ts [OPTIONS]

  --out FILE            JSON result (default bench/results/foundation-<date>.json)
  --seconds N           measured seconds of each bonded iperf3 run (default 20; -O 2 on top)
  --single-seconds M    measured seconds of each single-carrier iperf3 run (default 10; -O 1 on top)
  --keep                keep the run directory (configs, certificates, logs)
  --help                this text

Needs root, iperf3, openssl, iproute2, nftables, tc; OpenVPN (${OPENVPN_BIN}) for its row.
`;

const BONDED_RATES = [20, 10, 5];
const BONDED_PARALLEL = 4;
const BONDED_OMIT_S = 2;
// An unshaped veth has no queue to fill: slow start is over in milliseconds.
const SINGLE_OMIT_S = 1;
const SINGLE_PARALLEL = [1, 4];
const READY_TIMEOUT_MS = 30_000;
const IPERF_PORT = 5201;
const IPERF_ALT_PORT = 5202;

interface Args {
  out: string;
  seconds: number;
  singleSeconds: number;
  keep: boolean;
}

function fail(message: string): never {
  process.stderr.write(`bench/foundation: ${message}\n`);
  process.exit(2);
}

function parse(): Args {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        out: { type: 'string' },
        seconds: { type: 'string' },
        'single-seconds': { type: 'string' },
        keep: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`bench/foundation: ${(err as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const seconds = (v: string | undefined, dflt: number, flag: string): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 2 || n > 120) fail(`${flag} needs a whole number of seconds in 2..120, got ${v}`);
    return n;
  };
  const date = new Date().toISOString().slice(0, 10);
  return {
    out: resolve(values.out ?? join(REPO_ROOT, 'bench', 'results', `foundation-${date}.json`)),
    seconds: seconds(values.seconds, 20, '--seconds'),
    singleSeconds: seconds(values['single-seconds'], 10, '--single-seconds'),
    keep: values.keep,
  };
}

function have(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

function firstLine(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]?.trim() ?? '';
}

function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// --- one iperf3 run with its CPU and path evidence ------------------------------------------

interface RunSpec {
  system: Measurement['system'];
  direction: Measurement['direction'];
  parallel: number;
  seconds: number;
  omitS: number;
  host: string;
  port: number;
  /** Tunnel process groups to meter (name -> pgid). */
  groups: Record<string, number>;
  /** Byte counters read before and after: where the traffic went. */
  counters: () => Promise<Record<string, number>>;
  capacityMbit?: number;
  /** Names of counters that are carriers, for the per-carrier split. */
  carrierKeys?: string[];
}

async function measure(topo: Topology, spec: RunSpec): Promise<Measurement> {
  const command = `iperf3 -c ${spec.host} -p ${spec.port} -P ${spec.parallel} -t ${spec.seconds} -O ${spec.omitS}${spec.direction === 'download' ? ' -R' : ''} (in ${topo.ns.client})`;
  const m: Measurement = {
    system: spec.system, direction: spec.direction, parallel: spec.parallel, seconds: spec.seconds, omitS: spec.omitS, command,
  };
  log(`${spec.system} ${spec.direction} -P ${spec.parallel}: ${command}`);
  try {
    const c0 = await spec.counters();
    const meter = startCpuMeter(spec.groups);
    const r = await iperfTcp(topo, {
      host: spec.host, port: spec.port, parallel: spec.parallel, seconds: spec.seconds, omitS: spec.omitS,
      reverse: spec.direction === 'download',
    });
    const cpu = meter();
    const c1 = await spec.counters();
    m.mbps = round1(r.mbps);
    m.senderMbps = round1(r.sentMbps);
    m.retransmits = r.retransmits;
    if (spec.capacityMbit) m.fractionOfCapacity = Math.round((r.mbps / spec.capacityMbit) * 1000) / 1000;
    if (Object.keys(spec.groups).length > 0) m.cpu = cpu.groups;
    m.hostBusyPct = cpu.hostBusyPct;
    m.bytesSeen = Object.fromEntries(Object.keys(c1).map((k) => [k, (c1[k] ?? 0) - (c0[k] ?? 0)]));
    if (spec.carrierKeys) {
      const bytes = spec.carrierKeys.map((k) => m.bytesSeen?.[k] ?? 0);
      const total = bytes.reduce((s, x) => s + x, 0);
      if (total > 0) m.carrierShares = bytes.map((x) => Math.round((x / total) * 1000) / 1000);
    }
    log(`  -> ${m.mbps} Mbit/s (sender ${m.senderMbps}, retransmits ${m.retransmits})${m.cpu ? `, cpu ${JSON.stringify(m.cpu)}` : ''}`);
  } catch (err) {
    m.error = (err as Error).message;
    log(`  -> FAILED: ${m.error.split('\n')[0]}`);
  }
  return m;
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/** Bytes out of each carrier's two ends (both directions, after the shaper) by carrier index. */
async function carrierBytes(topo: Topology): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < topo.carriers.length; i++) {
    const c = await topo.carrierCounters(i);
    out[`car${i}`] = c.up.bytes + c.down.bytes;
  }
  return out;
}

/** Bytes through a tunnel device in the edge namespace (rx + tx), 0 when it does not exist. */
async function edgeDeviceBytes(topo: Topology, dev: string): Promise<number> {
  try {
    const c = await linkCounters(topo.ns.edge, dev);
    return c.rxBytes + c.txBytes;
  } catch {
    return 0;
  }
}

function pgid(p: { pid: number | undefined }, what: string): number {
  if (p.pid === undefined) throw new Error(`${what} has no pid`);
  return p.pid; // ManagedProcess makes each process its own group leader
}

// --- part 1: bonded ---------------------------------------------------------------------------

async function bondedPart(args: Args, runDir: string, result: FoundationResult): Promise<void> {
  const capacity = BONDED_RATES.reduce((s, x) => s + x, 0);
  let topo: Topology | undefined;
  let gw: Gateways | undefined;
  const servers: IperfServer[] = [];
  try {
    log(`part 1: topology with carriers at ${BONDED_RATES.join('/')} Mbit/s`);
    topo = await createTopology({
      prefix: `bfb${process.pid % 100000}`,
      carriers: BONDED_RATES.map((r, i) => ({ name: `lte-${'abc'[i]}`, rateMbit: r })),
    });
    const t = topo;
    servers.push(await startIperfServer(t, { host: t.addr.server, port: IPERF_PORT }));
    servers.push(await startIperfServer(t, { host: t.addr.serverAlt, port: IPERF_ALT_PORT }));
    const carrierKeys = t.carriers.map((_, i) => `car${i}`);
    const common = { parallel: BONDED_PARALLEL, seconds: args.seconds, omitS: BONDED_OMIT_S, capacityMbit: capacity, carrierKeys };

    // Before the gateways exist, so that nothing of Braid is even running.
    for (const direction of ['download', 'upload'] as const) {
      result.bonded.results.push(await measure(t, {
        ...common, system: 'best-single', direction, host: t.addr.serverAlt, port: IPERF_ALT_PORT, groups: {},
        counters: () => carrierBytes(t),
      }));
    }

    log('part 1: starting the Braid gateways');
    const dir = join(runDir, 'bonded');
    await mkdir(dir, { recursive: true });
    gw = await startGateways(t, { dir, multipathDestinations: [`${t.addr.server}/32`] });
    await gw.waitReady(READY_TIMEOUT_MS);
    const groups = { edge: pgid(gw.edge, 'edge gateway'), cloud: pgid(gw.cloud, 'cloud gateway') };
    for (const direction of ['download', 'upload'] as const) {
      result.bonded.results.push(await measure(t, {
        ...common, system: 'braid', direction, host: t.addr.server, port: IPERF_PORT, groups,
        counters: async () => ({ ...(await carrierBytes(t)), braid0: await edgeDeviceBytes(t, 'braid0') }),
      }));
    }
  } catch (err) {
    result.errors.push(`part 1 (bonded): ${(err as Error).message}`);
    log(`part 1 FAILED: ${(err as Error).message}`);
  } finally {
    await gw?.stop().catch(() => undefined);
    for (const s of servers) await s.stop().catch(() => undefined);
    await topo?.destroy();
  }
}

// --- part 2: one unshaped carrier -------------------------------------------------------------

async function singleCarrierPart(args: Args, runDir: string, result: FoundationResult): Promise<void> {
  let topo: Topology | undefined;
  let server: IperfServer | undefined;
  try {
    log('part 2: topology with one unshaped veth carrier');
    topo = await createTopology({ prefix: `bfs${process.pid % 100000}`, carriers: [{ name: 'veth' }] });
    const t = topo;
    server = await startIperfServer(t, { host: t.addr.server, port: IPERF_PORT });
    const base = { seconds: args.singleSeconds, omitS: SINGLE_OMIT_S, host: t.addr.server, port: IPERF_PORT };
    const runAll = async (system: Measurement['system'], groups: Record<string, number>, counters: RunSpec['counters']): Promise<void> => {
      for (const parallel of SINGLE_PARALLEL) {
        for (const direction of ['download', 'upload'] as const) {
          result.singleCarrier.results.push(await measure(t, { ...base, system, direction, parallel, groups, counters }));
        }
      }
    };

    // Raw first, then OpenVPN, then Braid: each tunnel is gone before the next one starts, and
    // Braid's policy routing (which would take the server's traffic) comes last.
    await runAll('raw-veth', {}, () => carrierBytes(t));

    if (!existsSync(OPENVPN_BIN)) {
      result.singleCarrier.skipped.openvpn = `${OPENVPN_BIN} not installed`;
    } else {
      const dir = join(runDir, 'openvpn');
      try {
        log('part 2: starting OpenVPN');
        await makeOpenVpnCerts(join(dir, 'certs'));
        const vpn = await startOpenVpn(t, join(dir, 'certs'), dir);
        try {
          await runAll('openvpn', { edge: pgid(vpn.client, 'openvpn client'), cloud: pgid(vpn.server, 'openvpn server') },
            async () => ({ ...(await carrierBytes(t)), [OPENVPN_DEV]: await edgeDeviceBytes(t, OPENVPN_DEV) }));
        } finally {
          await vpn.stop();
        }
      } catch (err) {
        result.errors.push(`part 2 (OpenVPN): ${(err as Error).message}`);
        log(`OpenVPN FAILED: ${(err as Error).message}`);
      }
    }

    let gw: Gateways | undefined;
    try {
      log('part 2: starting the Braid gateways on one carrier');
      const dir = join(runDir, 'single');
      await mkdir(dir, { recursive: true });
      gw = await startGateways(t, { dir, multipathDestinations: [`${t.addr.server}/32`] });
      await gw.waitReady(READY_TIMEOUT_MS);
      await runAll('braid', { edge: pgid(gw.edge, 'edge gateway'), cloud: pgid(gw.cloud, 'cloud gateway') },
        async () => ({ ...(await carrierBytes(t)), braid0: await edgeDeviceBytes(t, 'braid0') }));
    } catch (err) {
      result.errors.push(`part 2 (Braid): ${(err as Error).message}`);
      log(`Braid single-carrier FAILED: ${(err as Error).message}`);
    } finally {
      await gw?.stop().catch(() => undefined);
    }
  } catch (err) {
    result.errors.push(`part 2 (single carrier): ${(err as Error).message}`);
    log(`part 2 FAILED: ${(err as Error).message}`);
  } finally {
    await server?.stop().catch(() => undefined);
    await topo?.destroy();
  }
}

// --- main -------------------------------------------------------------------------------------

const PATHS: Record<string, string> = {
  'best-single': 'client ns 10.10.0.2 -> edge (nft masquerade, default route wan0) -> carrier 0 (tbf 20 Mbit/s) -> cloud (plain IP forwarding) -> server ns 10.40.0.3; no tunnel, Braid not running.',
  'braid (bonded)': 'client ns 10.10.0.2 -> edge (policy route to braid0 TUN, edge gateway splits over wan0/wan1/wan2) -> carriers 0/1/2 (tbf 20/10/5 Mbit/s) -> cloud 198.18.0.1 (cloud gateway merges, braid0 TUN, egress NAT) -> server ns 10.40.0.2.',
  'raw-veth': 'client ns 10.10.0.2 -> edge (nft masquerade, default route wan0) -> carrier 0 (veth, no shaper) -> cloud (plain IP forwarding) -> server ns 10.40.0.2; no tunnel.',
  openvpn: `client ns 10.10.0.2 -> edge (route 10.40.0.0/24 into ${OPENVPN_DEV}; openvpn --tls-client, UDP from wan0 ${'10.20.0.2'}) -> carrier 0 (veth, no shaper) -> cloud 198.18.0.1:1194 (openvpn --tls-server, route 10.10.0.0/24 back into ${OPENVPN_DEV}; no NAT) -> server ns 10.40.0.2. Point-to-point TLS mode, ${OPENVPN_ADDR.edge} <-> ${OPENVPN_ADDR.cloud}, AES-256-GCM data channel, --disable-dco (userspace), default MTU/mssfix.`,
  'braid (one carrier)': 'client ns 10.10.0.2 -> edge (policy route to braid0 TUN, edge gateway, one path over wan0) -> carrier 0 (veth, no shaper) -> cloud 198.18.0.1 (cloud gateway, braid0 TUN, egress NAT) -> server ns 10.40.0.2.',
};

async function main(): Promise<void> {
  const args = parse();
  if (!isRoot()) fail(`needs root (network namespaces, TUN devices, tc); running as uid ${process.getuid?.() ?? '?'}. Run it with sudo.`);
  const missing = ['iperf3', 'openssl', 'ip', 'tc', 'nft', 'curl'].filter((b) => !have(b));
  if (missing.length) fail(`missing tools: ${missing.join(', ')} (Debian: apt-get install iperf3 openssl iproute2 nftables curl)`);

  const started = Date.now();
  const runDir = await mkdtemp(join(tmpdir(), 'braid-bench-'));
  // Whatever way the process ends, the run directory goes unless asked to keep it; the topology
  // removes its own namespaces and processes in its exit handlers.
  process.on('exit', () => {
    if (!args.keep) rmSync(runDir, { recursive: true, force: true });
  });

  const result: FoundationResult = {
    benchmark: 'foundation',
    date: new Date().toISOString(),
    durationS: 0,
    command: `node --conditions=source --import tsx bench/foundation.ts ${process.argv.slice(2).join(' ')}`.trim(),
    host: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      kernel: release(),
      node: process.version,
      iperf3: firstLine(['iperf3', '--version']),
      openvpn: existsSync(OPENVPN_BIN) ? firstLine([OPENVPN_BIN, '--version']) : 'not installed',
      loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    },
    bonded: { carriersMbit: BONDED_RATES, capacityMbit: BONDED_RATES.reduce((s, x) => s + x, 0), parallel: BONDED_PARALLEL, seconds: args.seconds, omitS: BONDED_OMIT_S, results: [] },
    singleCarrier: { parallel: SINGLE_PARALLEL, seconds: args.singleSeconds, omitS: SINGLE_OMIT_S, skipped: {}, results: [] },
    paths: PATHS,
    errors: [],
  };

  await bondedPart(args, runDir, result);
  await singleCarrierPart(args, runDir, result);

  result.durationS = Math.round((Date.now() - started) / 1000);
  await mkdir(dirname(args.out), { recursive: true });
  await writeFile(args.out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${renderMarkdown(result)}\n`);
  log(`result written to ${relative(process.cwd(), args.out) || args.out} (${result.durationS} s)${args.keep ? `; run directory kept: ${runDir}` : ''}`);
  const failed = result.errors.length + [...result.bonded.results, ...result.singleCarrier.results].filter((m) => m.error).length;
  if (failed) {
    log(`${failed} failure(s): ${result.errors.join('; ')}`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/foundation: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
