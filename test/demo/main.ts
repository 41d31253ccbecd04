// npm run demo [-- --duration N] [--json] [--no-tunnel]
//
// Builds client, edge, three carriers, cloud and server namespaces, starts nginx, an upload sink
// and iperf3 on the server and the Braid gateways on edge and cloud, then runs real traffic from
// the client through the tunnel and shows, once a second, how the edge split it over the
// carriers and what the client received once the cloud merged it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { makeRandomFile, startIperfServer, startNginx, startUploadSink } from '../harness/apps.js';
import { startGateways, type Gateways } from '../harness/gateways.js';
import { startDemoObservability, type DemoObservability } from './observability.js';
import { createTopology, type Topology } from '../harness/topology.js';
import {
  capacityBetween, capacitySnapshot, CARRIER_KINDS, demoCarriers, demoContextCarriers, meanCapacityMbps, type CapacitySnapshot, type CarrierKind,
} from './carriers.js';
import { startContextFeed, type ContextFeed } from '../emulator/context-feed.js';
import { carrierCounterSource, Monitor, renderSummary, renderTable, type PathSource, type Snapshot } from './monitor.js';
import { CERT_TOOLS, checkPrerequisites, DEMO_TOOLS } from './prereqs.js';
import { DemoTraffic } from './traffic.js';

const HELP = `Braid demo: client, edge, three emulated carriers, cloud and server, each in its own network
namespace, with real traffic (HTTP downloads, uploads, an iperf3 UDP stream) through the tunnel.

usage: npm run demo [-- OPTIONS]

  --duration N   stop after N seconds of traffic (default: run until Ctrl-C)
  --json         print one JSON summary on stdout at the end (progress goes to stderr)
  --no-tunnel    no Braid: the same traffic over the edge's default route (carrier 0) only,
                 for comparison
  --carriers K   models (default): three synthetic cellular carriers in the link emulator
                 (lte-urban, lte-highway, 5g-nr scaled to 18 Mbit/s); tbf: fixed 20/10/5 Mbit/s
  --seed N       seed of the carrier models (default 1)
  --keep-logs    keep the run directory (configs, certificates, logs) after exit
  --help         this text

Needs root and: iproute2, nftables, nginx-light, iperf3, curl, openssl.
`;

const DOWNLOAD_BYTES = 2 * 1024 * 1024;
const UPLOAD_BYTES = 2 * 1024 * 1024;
const UDP_RATE_MBIT = 2;
// Parallel HTTP downloads: the emulated carriers have 25-40 ms one-way delay, so one flow in slow
// start fills little of them; four keep the paths busy (two were enough on the delay-free tbf links).
const DOWNLOAD_LOOPS = 4;
const READY_TIMEOUT_MS = 30_000;

interface Args {
  durationS: number | undefined;
  json: boolean;
  tunnel: boolean;
  keepLogs: boolean;
  carriers: CarrierKind;
  seed: number;
}

function parse(): Args {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        duration: { type: 'string' },
        json: { type: 'boolean', default: false },
        'no-tunnel': { type: 'boolean', default: false },
        'keep-logs': { type: 'boolean', default: false },
        carriers: { type: 'string', default: 'models' },
        seed: { type: 'string', default: '1' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`demo: ${(err as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  let durationS: number | undefined;
  if (values.duration !== undefined) {
    durationS = Number(values.duration);
    if (!Number.isFinite(durationS) || durationS < 3) {
      process.stderr.write(`demo: --duration needs a number of seconds >= 3, got ${values.duration}\n`);
      process.exit(2);
    }
  }
  const kind = values.carriers as CarrierKind;
  if (!CARRIER_KINDS.includes(kind)) {
    process.stderr.write(`demo: --carriers must be one of ${CARRIER_KINDS.join(', ')}, got ${values.carriers}\n`);
    process.exit(2);
  }
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) {
    process.stderr.write(`demo: --seed needs an integer, got ${values.seed}\n`);
    process.exit(2);
  }
  return { durationS, json: values.json, tunnel: !values['no-tunnel'], keepLogs: values['keep-logs'], carriers: kind, seed };
}

async function main(): Promise<void> {
  const args = parse();
  const problems = checkPrerequisites(args.tunnel ? [...DEMO_TOOLS, ...CERT_TOOLS] : DEMO_TOOLS);
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`demo: ${p}\n`);
    process.exit(2);
  }

  // In --json mode stdout carries exactly one JSON object; everything else goes to stderr.
  const log = (msg: string): void => void process.stderr.write(`demo: ${msg}\n`);
  const live = !args.json;
  const tty = live && process.stdout.isTTY;

  const dir = await mkdtemp(join(tmpdir(), 'braid-demo-'));
  let topo: Topology | undefined;
  let gateways: Gateways | undefined;
  let traffic: DemoTraffic | undefined;
  let monitor: Monitor | undefined;
  let obs: DemoObservability | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let trafficStartedAt = 0;
  let capacityAtStart: CapacitySnapshot | undefined;
  let contextFeed: ContextFeed | undefined;
  let shuttingDown = false;
  let fatal: string | undefined;

  const carrierOpts = { seed: args.seed, ...(args.durationS !== undefined ? { durationS: args.durationS + 60 } : {}) };
  const carriers = demoCarriers(args.carriers, carrierOpts);
  const capacity = meanCapacityMbps(carriers);

  const finish = async (code: number): Promise<never> => {
    if (ticker) clearInterval(ticker);
    if (traffic) await traffic.stop();
    let final: Snapshot | undefined;
    if (monitor) final = await monitor.sample().catch(() => monitor?.last);
    const carrierBytes = topo
      ? await Promise.all(carriers.map(async (c, i) => {
        const k = await topo!.carrierCounters(i).catch(() => undefined);
        return { name: c.name, rateMbit: c.rateMbit ?? null, upBytes: k?.up.bytes ?? null, downBytes: k?.down.bytes ?? null };
      }))
      : [];
    const durationS = trafficStartedAt ? (Date.now() - trafficStartedAt) / 1000 : 0;
    const capacityAtEnd = topo && capacityAtStart ? await capacitySnapshot(topo).catch(() => undefined) : undefined;
    const offered = capacityAtStart && capacityAtEnd ? capacityBetween(capacityAtStart, capacityAtEnd) : null;
    const stats = traffic?.stats;
    const summary = {
      mode: args.tunnel ? 'braid' : 'no-tunnel',
      durationS: round(durationS, 2),
      paths: (monitor?.lastPaths ?? []).map((p) => ({
        name: p.name, state: p.state, txBytes: p.txBytes, rxBytes: p.rxBytes, rttMs: p.rttMs === null ? null : round(p.rttMs, 1),
        share: round(final?.paths.find((r) => r.name === p.name)?.share ?? 0, 4),
      })),
      carriers: carrierBytes,
      carrierKind: args.carriers,
      // Mean capacity of the carriers (trace means or tbf rates), for judging the goodput.
      capacityMbps: { down: round(capacity.down, 2), up: round(capacity.up, 2) },
      // What the emulated carriers really offered while the traffic ran (null with tbf).
      offeredCapacityMbps: offered ? { down: round(offered.down, 2), up: round(offered.up, 2) } : null,
      // Application bytes delivered intact (both directions), per second of traffic.
      goodputMbps: mbit(traffic?.goodBytes ?? 0, durationS),
      goodputDownMbps: mbit(traffic?.goodBytesDown ?? 0, durationS),
      goodputUpMbps: mbit(traffic?.goodBytesUp ?? 0, durationS),
      transferOk: fatal === undefined && (traffic?.transferOk ?? false),
      downloads: stats?.downloads ?? null,
      uploads: stats?.uploads ?? null,
      udp: stats
        ? {
          rateMbit: UDP_RATE_MBIT, runs: stats.udp.runs, failed: stats.udp.failed, packets: stats.udp.packets,
          lostPackets: stats.udp.lostPackets, bytesReceived: stats.udp.bytesReceived,
          lossPercent: stats.udp.packets > 0 ? round((stats.udp.lostPackets / stats.udp.packets) * 100, 3) : null,
        }
        : null,
      errors: [...(fatal ? [fatal] : []), ...(stats?.errors ?? [])],
      logs: args.keepLogs ? dir : null,
    };
    // Gateways first: they flush their telemetry through the OTLP forwarders on the way out.
    if (gateways) await gateways.stop().catch(() => undefined);
    contextFeed?.stop();
    await obs?.close();
    if (topo) await topo.destroy().catch(() => undefined);
    if (!args.keepLogs) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    if (args.json) process.stdout.write(JSON.stringify(summary) + '\n');
    else {
      if (traffic) process.stdout.write(`\n${renderSummary(summary.paths, traffic.stats)}\n`);
      const intact = summary.transferOk ? 'yes'
        : fatal ? 'NO (see the error above)'
          : (stats?.downloads.ok ?? 0) === 0 ? 'NO (no download finished; run longer)' : 'NO (a transfer was corrupted or failed)';
      process.stdout.write(`transfers intact: ${intact}; average goodput ${summary.goodputMbps} Mbit/s ` +
        `(down ${summary.goodputDownMbps}, up ${summary.goodputUpMbps}) over ${summary.durationS} s\n`);
      if (args.keepLogs) process.stdout.write(`logs: ${dir}\n`);
    }
    process.exit(code);
  };

  const onSignal = (): void => {
    if (shuttingDown) {
      // Second Ctrl-C: leave now; the harness's exit handler still deletes the namespaces.
      process.exit(130);
    }
    shuttingDown = true;
    log('stopping (Ctrl-C again to force)');
    void finish(0);
  };
  // Installed before the topology exists so that the harness leaves the orderly shutdown to us.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    log(`building namespaces (run directory ${dir})`);
    topo = await createTopology({ carriers });
    // S2-5: the models' radio KPIs and speed as the edge's context (docs/context.md); the models'
    // clock starts with the emulators, which createTopology has just started.
    const feedCarriers = args.tunnel ? demoContextCarriers(args.carriers, carrierOpts) : undefined;
    const contextFile = join(dir, 'context.json');
    if (feedCarriers) contextFeed = startContextFeed({ file: contextFile, carriers: feedCarriers });
    if (shuttingDown) return;
    const nginx = await startNginx(topo, join(dir, 'nginx'));
    const downloadSha = await makeRandomFile(nginx.root, 'download.bin', DOWNLOAD_BYTES);
    await makeRandomFile(dir, 'upload.bin', UPLOAD_BYTES);
    const sink = await startUploadSink(topo, { logFile: join(dir, 'upload-sink.log') });
    const iperf = await startIperfServer(topo);

    let source: PathSource = carrierCounterSource(topo);
    if (args.tunnel) {
      // Before the gateways: their OTLP endpoint on the host must work inside the namespaces.
      obs = await startDemoObservability(topo, dir, log);
      log('starting the Braid gateways (cloud, then edge)');
      gateways = await startGateways(topo, {
        dir, multipathDestinations: [`${topo.addr.server}/32`],
        ...(feedCarriers ? { edge: { context: { sources: ['emulator'], emulator: { file: contextFile } } } } : {}),
      });
      await gateways.waitReady(READY_TIMEOUT_MS);
      const gw = gateways;
      source = async () => (await gw.edgeStatus()).paths.map((p) => ({
        name: p.name, state: p.state, txBytes: p.txBytes, rxBytes: p.rxBytes, rttMs: p.rttMs ?? null,
      }));
      log('gateways ready: every path is up');
      await obs.exposeDashboards();
    }
    if (shuttingDown) return;

    trafficStartedAt = Date.now();
    traffic = new DemoTraffic(topo, {
      downloadUrl: nginx.url('download.bin'),
      downloadSha256: downloadSha,
      downloadLoops: DOWNLOAD_LOOPS,
      uploadUrl: sink.url(),
      uploadFile: join(dir, 'upload.bin'),
      udp: { host: iperf.host, port: iperf.port, rateMbit: UDP_RATE_MBIT, reverse: true, segmentS: 5 },
      ...(args.durationS !== undefined ? { deadline: trafficStartedAt + args.durationS * 1000 } : {}),
    });
    const t = traffic;
    monitor = new Monitor(topo, source, carriers, trafficStartedAt, () => t.goodBytes);
    await monitor.sample(); // baseline for the first rates
    capacityAtStart = await capacitySnapshot(topo);
    t.start();
    const header = `Braid demo: ${args.tunnel ? 'split over every carrier, merged in the cloud' : 'NO tunnel, carrier 0 only'}` +
      `${args.durationS ? ` (${args.durationS} s)` : ' (Ctrl-C to stop)'}` +
      (obs && obs.lines.length > 0 ? `\n${obs.lines.join('\n')}` : '');
    let sampling = false;
    ticker = setInterval(() => {
      if (sampling || shuttingDown) return;
      sampling = true;
      void monitor!.sample().then((snap) => {
        if (shuttingDown) return;
        if (live) {
          const table = renderTable(snap, t.stats, header);
          process.stdout.write(tty ? `\x1b[H\x1b[2J${table}\n` : `${table}\n\n`);
        } else if (Math.round(snap.elapsedS) % 5 === 0) {
          log(`t=${snap.elapsedS.toFixed(0)}s ${snap.paths.map((p) => `${p.name} ${(p.txMbps + p.rxMbps).toFixed(1)}`).join(' ')} Mbit/s; ` +
            `client down ${snap.clientDownMbps.toFixed(1)} Mbit/s`);
        }
      }).catch((err: Error) => log(`sampling failed: ${err.message}`)).finally(() => { sampling = false; });
      if (args.durationS !== undefined && Date.now() - trafficStartedAt >= args.durationS * 1000 && !shuttingDown) {
        shuttingDown = true;
        void finish(0);
      }
    }, 1000);
  } catch (err) {
    if (shuttingDown) return;
    shuttingDown = true;
    fatal = (err as Error).message;
    log(fatal);
    args.keepLogs = true; // the logs are what explains the failure
    await finish(1);
  }
}

function mbit(bytes: number, seconds: number): number {
  return seconds > 0 ? round((bytes * 8) / seconds / 1e6, 3) : 0;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

void main();
