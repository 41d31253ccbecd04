// Fleet benchmark: N simulated edges (default 1,000) stream telemetry at 10 reports per second
// into one cloud process over real gRPC with mutual TLS, each edge with its own certificate and
// its own TLS connection, through the same reporter (gateway-core/src/uplink) and the same
// TelemetryService + Fleet (gateway-core/src/fleet, file-backed state) the gateways run.
//
//   npm run bench:fleet -- [--edges 1000] [--seconds 40] [--procs 2] [--ramp-seconds 10] [--out FILE]
//
// Processes: this one (the conductor), one cloud, and --procs edge processes sharing the edges.
// After the ramp-up and a 3 s warm-up the conductor measures for --seconds: reports received by
// the cloud, the cloud's CPU time (process.cpuUsage, user + system) and resident memory (peak of
// samples every 500 ms), its event-loop delay. Then the edges stop sampling and drain: every
// report produced must be acknowledged; sent / received / lost and the edges' queue high-water
// marks are printed and written as JSON (default bench/results/fleet-<date>.json).
// Exit code 0 when no report was lost and no queue reached its bound, 1 otherwise, 2 bad use.
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ControlError, Fleet, FileStateStore, RecordingSink, TelemetryReporter, grpcUplink, realClock, startControlServer, telemetryService, type TelemetrySample } from '@braid/gateway-core';

const REPO = resolve(new URL('..', import.meta.url).pathname);
const CERTS = join(tmpdir(), 'braid-bench-fleet-certs');
const QUEUE_REPORTS = 600;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const edgeName = (i: number) => `fleet-edge-${i}`;

// ---- certificates: one CA, one server certificate, one client certificate per edge ----------

function makeCerts(n: number): void {
  mkdirSync(CERTS, { recursive: true });
  execFileSync('bash', [join(REPO, 'scripts/gen-dev-certs.sh'), CERTS, '--edge-id', edgeName(0)]);
  // All edges share one key (key generation is not what is measured); each has its own certificate (CN).
  const script = `set -e; cd "$1"; [ -f fleet.key ] || openssl ecparam -name prime256v1 -genkey -noout -out fleet.key
for i in $(seq 0 $(($2 - 1))); do [ -f "fe-$i.pem" ] || openssl req -x509 -new -key fleet.key -CA ca.pem -CAkey ca.key -subj "/CN=fleet-edge-$i" \
  -days 30 -addext extendedKeyUsage=clientAuth -addext basicConstraints=critical,CA:FALSE -out "fe-$i.pem" 2>/dev/null; done`;
  execFileSync('bash', ['-c', script, 'certs', CERTS, String(n)], { stdio: 'inherit' });
}

// ---- the cloud process ------------------------------------------------------------------------

interface CloudStats {
  cpuUs: number;
  rssBytes: number;
  peakRssBytes: number;
  heapUsedBytes: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  fleet: Fleet['stats'];
  service: ReturnType<ReturnType<typeof telemetryService>['stats']>;
  overlays: number;
}

async function cloudRole(): Promise<void> {
  const stateDir = join(tmpdir(), `braid-bench-fleet-state-${process.pid}`);
  const sink = new RecordingSink(100);
  const fleet = new Fleet({ store: new FileStateStore(join(stateDir, 'fleet.json')), sink, saveIntervalMs: 5000 });
  await fleet.start();
  const svc = telemetryService({ fleet, maxStreams: 100_000 });
  const server = await startControlServer({
    listen: '127.0.0.1:0',
    tls: { ca: join(CERTS, 'ca.pem'), cert: join(CERTS, 'cloud.pem'), key: join(CERTS, 'cloud.key') },
    onHello: () => Promise.reject(new ControlError(12, 'fleet bench: telemetry only')),
    services: [svc.service],
  });
  let peakRss = 0;
  const rssTimer = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage.rss()); }, 500);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const stats = (): CloudStats => {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    peakRss = Math.max(peakRss, mem.rss);
    return {
      cpuUs: cpu.user + cpu.system, rssBytes: mem.rss, peakRssBytes: peakRss, heapUsedBytes: mem.heapUsed,
      loopDelayP99Ms: loop.percentile(99) / 1e6, loopDelayMaxMs: loop.max / 1e6,
      fleet: { ...fleet.stats }, service: svc.stats(), overlays: [...sink.current.values()].reduce((n, m) => n + m.size, 0),
    };
  };
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stats') process.send?.({ type: 'stats', stats: stats() });
    if (m.type === 'reset-loop') loop.reset();
    if (m.type === 'stop') {
      clearInterval(rssTimer);
      void server.close().then(() => fleet.close()).then(() => {
        rmSync(stateDir, { recursive: true, force: true });
        process.exit(0);
      });
    }
  });
  process.send?.({ type: 'ready', port: server.port });
}

// ---- an edge process: many simulated edges ---------------------------------------------------

/** A synthetic edge: three carriers whose RTT alternates (so every sample is a change: 10 reports/s), cells shared by neighbours, speed 0-350 km/h. */
function sampler(i: number): () => TelemetrySample {
  let k = 0;
  const carriers = ['lte-a', 'lte-b', 'nr-c'];
  return () => {
    k++;
    const now = Date.now();
    const degrade = i % 10 === 0 && k % 300 > 200; // every 10th edge: carrier nr-c degrades for 10 s of every 30
    return {
      atUnixMs: now, sessionId: i + 1,
      paths: carriers.map((c, j) => ({
        carrier: c, state: 'PATH_STATE_UP' as const, transport: 'udp', rttMs: (k % 2 ? 40 : 60) + j * 10 + (degrade && j === 2 ? 150 : 0),
        minRttMs: 35, s3DelayMs: 2, cwndBytes: 60_000, congestionMode: 'CONGESTION_MODE_WINDOW' as const,
        lossRate: degrade && j === 2 ? 0.1 : 0.005, goodputMbps: 10 + j, queueBytes: 20_000, txBytes: k * 100_000, rxBytes: k * 400_000,
      })),
      carriers: carriers.map((c, j) => ({
        carrier: c, operatorName: `op-${j}`, mcc: '208', mnc: `0${j + 1}`, technology: j === 2 ? 'nr' : 'lte',
        rsrpDbm: -90, rsrqDb: -10, sinrDb: degrade && j === 2 ? 0 : 15, cellId: String(1000 + Math.floor(i / 20)), radioAtUnixMs: now,
      })),
      motion: { latitude: 48 + i / 1000, longitude: 2, speedKmh: (i * 7) % 350, atUnixMs: now },
    };
  };
}

async function edgesRole(): Promise<void> {
  const [from, to, port, rampMs] = process.argv.slice(3).map(Number) as [number, number, number, number];
  const ca = join(CERTS, 'ca.pem');
  const reporters: TelemetryReporter[] = [];
  const n = to - from;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  for (let i = from; i < to; i++) {
    const r = new TelemetryReporter({
      edgeId: edgeName(i), clock: realClock, sample: sampler(i), settings: { queueReports: QUEUE_REPORTS },
      transport: grpcUplink({ target: `127.0.0.1:${port}`, serverName: 'localhost', tls: { ca, cert: join(CERTS, `fe-${i}.pem`), key: join(CERTS, 'fleet.key') } }),
    });
    reporters.push(r);
    r.start();
    await sleep(rampMs / n);
  }
  process.send?.({ type: 'started' });
  const totals = () => {
    const s = reporters.map((r) => r.stats());
    return {
      edges: s.length,
      produced: s.reduce((a, x) => a + x.produced, 0),
      acked: s.reduce((a, x) => a + x.ackedSeq, 0),
      queued: s.reduce((a, x) => a + x.queued, 0),
      dropped: s.reduce((a, x) => a + x.dropped, 0),
      reconnects: s.reduce((a, x) => a + x.reconnects, 0),
      lossReasons: s.reduce<Record<string, number>>((a, x) => {
        for (const [k, v] of Object.entries(x.lossReasons)) a[k] = (a[k] ?? 0) + v;
        return a;
      }, {}),
      queueHighWaterMax: Math.max(...s.map((x) => x.queueHighWater)),
      queueHighWaterMean: s.reduce((a, x) => a + x.queueHighWater, 0) / s.length,
      connected: s.filter((x) => x.connected).length,
      loopDelayP99Ms: loop.percentile(99) / 1e6,
      loopDelayMaxMs: loop.max / 1e6,
    };
  };
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stats') process.send?.({ type: 'stats', stats: totals() });
    if (m.type === 'drain') {
      for (const r of reporters) r.stopSampling();
      void (async () => {
        const end = Date.now() + 30_000;
        while (Date.now() < end && reporters.some((r) => r.stats().queued > 0)) await sleep(100);
        process.send?.({ type: 'drained', stats: totals() });
      })();
    }
    if (m.type === 'stop') {
      for (const r of reporters) r.stop();
      setTimeout(() => process.exit(0), 200);
    }
  });
}

// ---- the conductor ---------------------------------------------------------------------------

function child(args: string[]): ChildProcess {
  return fork(new URL(import.meta.url).pathname, args, { execArgv: ['--conditions=source', '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function ask<T>(c: ChildProcess, type: string, reply = type): Promise<T> {
  return new Promise((resolveP, reject) => {
    const onMsg = (m: { type: string; stats?: T }) => {
      if (m.type !== reply) return;
      c.off('message', onMsg);
      resolveP(m.stats as T);
    };
    c.on('message', onMsg);
    c.once('exit', (code) => reject(new Error(`child exited (${code}) before answering ${type}`)));
    if (type) c.send({ type });
  });
}

type EdgeTotals = { edges: number; produced: number; acked: number; queued: number; dropped: number; reconnects: number; lossReasons: Record<string, number>; queueHighWaterMax: number; queueHighWaterMean: number; connected: number; loopDelayP99Ms: number; loopDelayMaxMs: number };

async function conductor(): Promise<number> {
  const { values } = parseArgs({
    options: {
      edges: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '40' }, procs: { type: 'string', default: '2' },
      'ramp-seconds': { type: 'string', default: '10' }, out: { type: 'string' },
    },
  });
  const edges = Number(values.edges);
  const seconds = Number(values.seconds);
  const procs = Number(values.procs);
  const rampMs = Number(values['ramp-seconds']) * 1000;
  if (![edges, seconds, procs, rampMs].every((x) => Number.isInteger(x) && x > 0) || procs > edges) {
    console.error('usage: bench/fleet.ts [--edges N] [--seconds S] [--procs P] [--ramp-seconds R] [--out FILE]');
    return 2;
  }
  const t0 = Date.now();
  makeCerts(edges);
  console.log(`certificates ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (${CERTS})`);

  const cloud = child(['cloud']);
  const port = await new Promise<number>((r) => cloud.once('message', (m: { port: number }) => r(m.port)));
  const per = Math.ceil(edges / procs);
  const edgeProcs: ChildProcess[] = [];
  const started: Promise<unknown>[] = [];
  for (let p = 0; p < procs; p++) {
    const c = child(['edges', String(p * per), String(Math.min(edges, (p + 1) * per)), String(port), String(rampMs)]);
    edgeProcs.push(c);
    started.push(ask(c, '', 'started'));
  }
  await Promise.all(started);
  console.log(`${edges} edges started over ${rampMs / 1000} s in ${procs} processes; warming up 3 s`);
  await sleep(3000);
  cloud.send({ type: 'reset-loop' });
  const c0 = await ask<CloudStats>(cloud, 'stats');
  const e0 = await Promise.all(edgeProcs.map((c) => ask<EdgeTotals>(c, 'stats')));
  const w0 = Date.now();
  await sleep(seconds * 1000);
  const c1 = await ask<CloudStats>(cloud, 'stats');
  const e1 = await Promise.all(edgeProcs.map((c) => ask<EdgeTotals>(c, 'stats')));
  const wallS = (Date.now() - w0) / 1000;
  const drained = await Promise.all(edgeProcs.map((c) => ask<EdgeTotals>(c, 'drain', 'drained')));
  await sleep(500);
  const cEnd = await ask<CloudStats>(cloud, 'stats');
  for (const c of edgeProcs) c.send({ type: 'stop' });
  cloud.send({ type: 'stop' });

  const sum = (f: (t: EdgeTotals) => number) => drained.reduce((a, t) => a + f(t), 0);
  const sent = sum((t) => t.produced);
  const received = cEnd.fleet.reportsStored;
  const result = {
    when: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg() },
    config: { edges, seconds, procs, rampSeconds: rampMs / 1000, queueReports: QUEUE_REPORTS, reportsPerSecondPerEdge: 10 },
    window: {
      seconds: wallS,
      reportsReceived: c1.fleet.reportsStored - c0.fleet.reportsStored,
      reportsPerSecond: (c1.fleet.reportsStored - c0.fleet.reportsStored) / wallS,
      perEdgeHz: (c1.fleet.reportsStored - c0.fleet.reportsStored) / wallS / edges,
      batchesPerSecond: (c1.fleet.batches - c0.fleet.batches) / wallS,
      cloudCpuPercentOfOneCore: ((c1.cpuUs - c0.cpuUs) / 1e6 / wallS) * 100,
      cloudRssMB: c1.rssBytes / 2 ** 20,
      cloudPeakRssMB: c1.peakRssBytes / 2 ** 20,
      cloudHeapUsedMB: c1.heapUsedBytes / 2 ** 20,
      cloudLoopDelayP99Ms: c1.loopDelayP99Ms,
      cloudLoopDelayMaxMs: c1.loopDelayMaxMs,
      reconnectsInWindow: e1.reduce((a, t) => a + t.reconnects, 0) - e0.reduce((a, t) => a + t.reconnects, 0),
    },
    totals: {
      sent, received, lost: sent - received, acknowledged: sum((t) => t.acked), stillQueued: sum((t) => t.queued), droppedByEdgeQueues: sum((t) => t.dropped),
      duplicatesAtCloud: cEnd.fleet.duplicates, gapsAtCloud: cEnd.fleet.gaps, reconnects: sum((t) => t.reconnects),
      streamEndReasons: drained.reduce<Record<string, number>>((a, t) => {
        for (const [k, v] of Object.entries(t.lossReasons)) a[k] = (a[k] ?? 0) + v;
        return a;
      }, {}),
      edgeQueueHighWaterMax: Math.max(...drained.map((t) => t.queueHighWaterMax)),
      edgeQueueHighWaterMean: sum((t) => t.queueHighWaterMean * t.edges) / edges,
      edgeQueueBound: QUEUE_REPORTS,
      edgeProcessLoopDelayP99Ms: Math.max(...drained.map((t) => t.loopDelayP99Ms)),
      edgeProcessLoopDelayMaxMs: Math.max(...drained.map((t) => t.loopDelayMaxMs)),
      streamsAtEnd: cEnd.service.streams, refused: cEnd.service.refused, overlaysInForce: cEnd.overlays, stateSaves: cEnd.fleet.saves, stateSaveErrors: cEnd.fleet.saveErrors,
    },
  };
  const out = values.out ?? join(REPO, 'bench/results', `fleet-${result.when.slice(0, 19).replace(/[:T]/g, '-')}.json`);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
  const w = result.window;
  const t = result.totals;
  console.log(`\n| measure | value |\n|---|---|`);
  console.log(`| edges, window | ${edges}, ${w.seconds.toFixed(1)} s |`);
  console.log(`| reports received in window | ${w.reportsReceived} (${w.reportsPerSecond.toFixed(0)}/s, ${w.perEdgeHz.toFixed(2)} per edge per s; ${w.batchesPerSecond.toFixed(0)} batches/s) |`);
  console.log(`| cloud CPU | ${w.cloudCpuPercentOfOneCore.toFixed(0)} % of one core |`);
  console.log(`| cloud RSS (peak) | ${w.cloudRssMB.toFixed(0)} MB (${w.cloudPeakRssMB.toFixed(0)} MB); heap used ${w.cloudHeapUsedMB.toFixed(0)} MB |`);
  console.log(`| cloud event-loop delay p99 / max | ${w.cloudLoopDelayP99Ms.toFixed(1)} / ${w.cloudLoopDelayMaxMs.toFixed(1)} ms |`);
  console.log(`| reports sent / received / not received (of which still queued at the end) | ${t.sent} / ${t.received} / ${t.lost} (${t.stillQueued}) |`);
  console.log(`| dropped by edge queues, duplicates at cloud, gaps | ${t.droppedByEdgeQueues}, ${t.duplicatesAtCloud}, ${t.gapsAtCloud} |`);
  console.log(`| edge queue high-water max / mean (bound) | ${t.edgeQueueHighWaterMax} / ${t.edgeQueueHighWaterMean.toFixed(1)} (${t.edgeQueueBound}) |`);
  console.log(`| edge processes' event-loop delay p99 / max | ${t.edgeProcessLoopDelayP99Ms.toFixed(1)} / ${t.edgeProcessLoopDelayMaxMs.toFixed(1)} ms |`);
  console.log(`| reconnects in all (why streams ended), in the window; refused | ${t.reconnects} (${JSON.stringify(t.streamEndReasons)}), ${w.reconnectsInWindow}; ${JSON.stringify(t.refused)} |`);
  console.log(`\nresult: ${out}`);
  const ok = t.lost === 0 && t.droppedByEdgeQueues === 0 && t.stillQueued === 0 && t.edgeQueueHighWaterMax < QUEUE_REPORTS;
  console.log(ok ? 'OK: no report lost, no queue reached its bound' : 'FAILED: reports lost or a queue reached its bound');
  return ok ? 0 : 1;
}

const role = process.argv[2];
if (role === 'cloud') await cloudRole();
else if (role === 'edges') await edgesRole();
else process.exitCode = await conductor();
