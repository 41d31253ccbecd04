// Runs one bench scenario (DESIGN.md bench contract) and writes its result.
//
//   npm run bench -- --scenario FILE.json --out RESULT.json [--keep]
//
// Every system of the scenario runs in this one invocation, one after another, each on a freshly
// built topology with the same carrier specs and seeds, its traffic starting at the same time on
// the links' clock (the lead: LEAD_S, or more when a system's set-up needed longer; the systems
// with the slowest set-up run first, so that the lead they needed holds for the rest). Exit codes: 0 all measured; 1 a system failed (the result is
// still written, its figures null and the reason in details); 2 the scenario is invalid or the
// bench cannot run here (not root, tools missing).
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isRoot } from '../test/harness/root.js';
import { createTopology, type Topology } from '../test/harness/topology.js';
import { NULL_RESULT, validateResult, type BenchResult, type SystemDetails, type SystemResult } from './lib/bench-result.js';
import { stepResponses } from './lib/step-response.js';
import { LEAD_S, carrierSpecs, modelCatalog, sampleCarrier, type CarrierSample } from './lib/emulation.js';
import { startCpuMeter } from './lib/proc-stats.js';
import { ScenarioError, bestCarrier, loadScenario, trafficDirections, type ResolvedScenario, type SystemName } from './lib/scenario.js';
import { maxGapMs, round } from './lib/stats.js';
import { setupSystem } from './lib/systems.js';
import { BIN_MS, RR_STARTUP_MS, runTraffic } from './lib/traffic.js';
import { startTrace, type TraceSample } from './lib/trace.js';

const HELP = `Braid bench: one scenario, every system in it, one result file.

usage: npm run bench -- --scenario FILE.json --out RESULT.json [--keep] [--trace FILE]

  --scenario FILE   scenario JSON (DESIGN.md, bench contract); relative trace paths resolve against it
  --out FILE        result JSON (bench/schema/result.schema.json)
  --keep            keep the run directory (gateway configs and logs)
  --trace FILE      also write a time trace of each system's run (every 200 ms: each carrier's
                    offered and delivered rate and queue, Braid's per-path view and reorder
                    buffer, each TCP sender's cwnd, RTT and retransmissions; bench/lib/trace.ts)

Needs root, iperf3, iproute2, nftables, openssl; mptcpize (Debian mptcpd) for "mptcp", openvpn for "openvpn".
`;

const TOOLS: Record<string, string[]> = {
  '*': ['iperf3', 'ip', 'nft', 'ss', 'curl'],
  braid: ['openssl'], 'single-path-braid': ['openssl'], mptcp: ['mptcpize'], openvpn: ['openssl', 'openvpn'],
};

const SETUP_RANK: Record<SystemName, number> = { braid: 0, 'single-path-braid': 1, openvpn: 2, mptcp: 3, 'best-single': 4 };

function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

function have(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } }).status === 0;
}

interface Args { scenario: string; out: string; keep: boolean; trace: string | undefined }

function parse(): Args {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        scenario: { type: 'string' }, out: { type: 'string' },
        keep: { type: 'boolean', default: false }, help: { type: 'boolean', default: false },
        trace: { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    fail(`${(err as Error).message}\n\n${HELP}`);
  }
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  if (!values.scenario) fail(`--scenario is required\n\n${HELP}`);
  if (!values.out) fail(`--out is required\n\n${HELP}`);
  return { scenario: values.scenario, out: resolve(values.out), keep: values.keep, trace: values.trace === undefined ? undefined : resolve(values.trace) };
}

function sum(xs: number[]): number {
  return xs.reduce((s, x) => s + x, 0);
}

/** One system on its own topology: set up, wait out the lead, run the traffic, measure, tear down. */
async function runSystem(
  s: ResolvedScenario, system: SystemName, leadS: number, best: number, runDir: string, traces?: Record<string, TraceSample[]>,
): Promise<{ figures: SystemResult; details: SystemDetails }> {
  const details: SystemDetails = { errors: [], notes: [], commands: [], path: '', leadS, carrierBytes: [] };
  const specs = carrierSpecs(s, leadS);
  const dirs = trafficDirections(s.traffic);
  let topo: Topology | undefined;
  let stop: (() => Promise<void>) | undefined;
  try {
    log(`${system}: building ${specs.length} carrier link(s)`);
    topo = await createTopology({ prefix: `bn${process.pid % 100000}`, carriers: specs });
    const sys = await setupSystem(system, topo, best, join(runDir, system));
    stop = sys.stop;
    details.path = sys.path;
    details.notes.push(...sys.notes);
    // TCP through the tunnel behaves after the senders' congestion control (BBR keeps its window
    // at two bandwidth-delay products of its *minimum* RTT; CUBIC grows after losses): say which.
    const tcpNs = s.traffic.some((x) => x.kind === 'tcp' && x.direction === 'up') ? sys.endpoints.clientNs : sys.endpoints.serverNs;
    const cc = await topo.exec(tcpNs, ['sysctl', '-n', 'net.ipv4.tcp_congestion_control'], { allowFailure: true });
    const asked = s.traffic.find((x) => x.kind === 'tcp' && x.congestion !== undefined);
    if (asked?.kind === 'tcp' && asked.congestion) details.notes.push(`TCP congestion control of the senders: ${asked.congestion} (the scenario's, iperf3 -C)`);
    else if (cc.code === 0) details.notes.push(`TCP congestion control of the senders: ${cc.stdout.trim()} (kernel default of this host)`);
    const t = topo;
    // Start the traffic when the emulators' clocks (which began while the topology was built)
    // read the lead: every system then meets the same link conditions at the same point of its run.
    const emuT = (await t.emulatorStats(0)).t;
    const minDelayMs = s.traffic.some((x) => x.kind === 'rr') ? RR_STARTUP_MS : 300;
    let delayMs = (leadS - emuT) * 1000;
    if (delayMs < minDelayMs) {
      details.leadS = Math.ceil(emuT + minDelayMs / 1000);
      delayMs = (details.leadS - emuT) * 1000;
      details.notes.push(`set-up ended at ${emuT.toFixed(1)} s on the links' clock, past the ${leadS} s lead: this system's traffic started at ${details.leadS} s, so its scripted outages came ${round(details.leadS - leadS, 1)} s early in its run; the systems after it had a ${details.leadS} s lead`);
    }
    const sampleAll = (): Promise<CarrierSample[]> =>
      Promise.all(s.resolvedCarriers.map((_, i) => sampleCarrier(t, i)));
    log(`${system}: ${s.durationS} s of ${s.traffic.map((x) => x.kind).join(' + ')} (${sys.path})`);
    let before: CarrierSample[] = [];
    let meter: ReturnType<typeof startCpuMeter> | undefined;
    let stopTrace: (() => Promise<TraceSample[]>) | undefined;
    const outcome = await runTraffic(t, sys.endpoints, s.traffic, s.durationS, 5300, Date.now() + delayMs, async () => {
      meter = startCpuMeter(sys.groups);
      before = await sampleAll();
      if (traces) {
        stopTrace = startTrace({
          topo: t,
          tcpNamespaces: [...new Set(s.traffic.flatMap((x) => (x.kind === 'tcp' ? [x.direction === 'down' ? sys.endpoints.serverNs : sys.endpoints.clientNs] : [])))],
          portRange: [5300, 5399],
          ...(sys.traceStatus ? { braidStatus: sys.traceStatus } : {}),
        });
      }
    });
    if (traces && stopTrace) traces[system] = await stopTrace();
    const cpu = meter ? meter() : { groups: {}, hostBusyPct: 0 };
    const after = await sampleAll();
    details.commands = outcome.commands;
    details.errors.push(...outcome.errors);
    if (before.length === 0) details.errors.push('the traffic never started (no counters at its start)');
    if (details.errors.length) return { figures: { ...NULL_RESULT }, details };

    const windowS = (after[0]!.atMs - before[0]!.atMs) / 1000;
    let capacityBytes = 0;
    let wireBytes = 0;
    s.resolvedCarriers.forEach((c, i) => {
      const b = before[i]!;
      const a = after[i]!;
      const up = a.up.delivered - b.up.delivered;
      const down = a.down.delivered - b.down.delivered;
      details.carrierBytes.push({ name: c.name, up, down });
      for (const d of dirs) {
        capacityBytes += a[d].capacity - b[d].capacity;
        wireBytes += d === 'up' ? up : down;
      }
    });

    const payload = sum(dirs.map((d) => outcome.payloadBytes[d]));
    const goodputMbps = (payload * 8) / s.durationS / 1e6;
    const capacityMbps = (capacityBytes * 8) / windowS / 1e6;
    const groups = Object.values(cpu.groups);
    const figures: SystemResult = {
      goodputMbps: round(goodputMbps, 2),
      capacityMbps: round(capacityMbps, 2),
      efficiency: capacityMbps > 0 ? round(goodputMbps / capacityMbps, 3) : null,
      latencyMs: outcome.latencyMs,
      maxGapMs: maxGapMs(outcome.bins, BIN_MS),
      reorderDelayMs: await sys.reorderDelayMs().catch(() => null),
      overheadPct: payload > 0 ? round((wireBytes / payload - 1) * 100, 1) : null,
      lostMessages: outcome.lostMessages,
      cpuPct: groups.length ? round(sum(groups.map((g) => g.cpuPct)), 1) : null,
      rssMb: groups.length ? round(sum(groups.map((g) => g.rssMiB)), 1) : null,
    };
    if (outcome.tcpRetransmits !== null) details.notes.push(`end-to-end TCP retransmissions (iperf3 sender): ${outcome.tcpRetransmits} segments`);
    details.notes.push(...await sys.engineNotes().catch((err: unknown) => [`engine counters not read: ${(err as Error).message}`]));
    details.delaySpreadMs = await sys.delaySpreadMs().catch(() => null);
    const steps = stepResponses(s, dirs, outcome.bins, BIN_MS);
    if (steps.length) {
      details.stepResponse = steps;
      for (const st of steps) {
        log(`${system}: step at ${st.atS} s, ${st.fromMbps} -> ${st.toMbps} Mbit/s: 90 % of the new capacity ${st.reach90CapacityMs === null ? 'never reached' : `after ${st.reach90CapacityMs} ms`}; settled at ${st.settledMbps} Mbit/s${st.reach90SettledMs === null ? '' : `, 90 % of that after ${st.reach90SettledMs} ms`}`);
      }
    }
    if (figures.reorderDelayMs) {
      details.notes.push('reorderDelayMs: upper bounds of the gateways\' reorder-delay histogram buckets (both receiving sides, whole session)');
    }
    log(`${system}: goodput ${figures.goodputMbps} of ${figures.capacityMbps} Mbit/s (efficiency ${figures.efficiency}), max gap ${figures.maxGapMs} ms${figures.latencyMs ? `, latency p50 ${figures.latencyMs.p50} p99 ${figures.latencyMs.p99} ms, lost ${figures.lostMessages}` : ''}${figures.cpuPct !== null ? `, cpu ${figures.cpuPct} %` : ''}`);
    return { figures, details };
  } catch (err) {
    details.errors.push((err as Error).message);
    log(`${system}: FAILED: ${(err as Error).message.split('\n')[0]}`);
    return { figures: { ...NULL_RESULT }, details };
  } finally {
    await stop?.().catch(() => undefined);
    await topo?.destroy();
  }
}

async function main(): Promise<void> {
  const args = parse();
  let s: ResolvedScenario;
  try {
    s = loadScenario(args.scenario, modelCatalog());
    carrierSpecs(s); // the emulator's own validation, before anything is built
  } catch (err) {
    if (err instanceof ScenarioError) fail(`invalid scenario ${err.message}`);
    fail(`scenario ${args.scenario}: ${(err as Error).message}`);
  }
  if (!isRoot()) fail(`needs root (network namespaces, TUN devices); running as uid ${process.getuid?.() ?? '?'}`);
  const missing = [...new Set([...TOOLS['*']!, ...s.systems.flatMap((x) => TOOLS[x] ?? [])])].filter((b) => !have(b));
  if (missing.length) fail(`missing tools: ${missing.join(', ')} (Debian: iperf3 iproute2 nftables openssl mptcpd openvpn curl)`);

  const best = bestCarrier(s);
  const runDir = await mkdtemp(join(tmpdir(), 'braid-bench-'));
  process.on('exit', () => {
    if (!args.keep) rmSync(runDir, { recursive: true, force: true });
  });
  const result: BenchResult = {
    scenario: s.name,
    durationS: s.durationS,
    systems: {},
    date: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`,
    host: {
      cpus: cpus().length, cpuModel: cpus()[0]?.model.trim() ?? 'unknown', kernel: release(), node: process.version,
      loadAverageAtStart: loadavg().map((x) => round(x, 2)),
    },
    carriers: s.resolvedCarriers.map((c) => ({ name: c.name, meanMbps: { up: round(c.meanMbps.up, 2), down: round(c.meanMbps.down, 2) } })),
    bestCarrier: best.name,
    details: {},
  };
  log(`scenario ${s.name}: ${s.resolvedCarriers.length} carrier(s) (emulated), best ${best.name}; systems ${s.systems.join(', ')}`);
  // Slowest set-up first (the Braid gateways start two Node processes): the lead they need is
  // then the lead of every system after them. Results keep the scenario's order.
  const order = [...s.systems].sort((x, y) => SETUP_RANK[x] - SETUP_RANK[y]);
  let leadS = LEAD_S;
  const traces: Record<string, TraceSample[]> | undefined = args.trace ? {} : undefined;
  const runs = new Map<SystemName, Awaited<ReturnType<typeof runSystem>>>();
  for (const system of order) {
    const r = await runSystem(s, system, leadS, best.index, runDir, traces);
    runs.set(system, r);
    leadS = Math.max(leadS, r.details.leadS);
  }
  for (const system of s.systems) {
    const r = runs.get(system)!;
    result.systems[system] = r.figures;
    result.details[system] = r.details;
  }
  const problems = validateResult(result);
  if (problems.length) throw new Error(`result does not match its schema (a bug): ${problems.join('; ')}`);
  await mkdir(dirname(args.out), { recursive: true });
  await writeFile(args.out, `${JSON.stringify(result, null, 2)}\n`);
  log(`result written to ${relative(process.cwd(), args.out) || args.out}${args.keep ? `; run directory kept: ${runDir}` : ''}`);
  if (args.trace && traces) {
    await mkdir(dirname(args.trace), { recursive: true });
    await writeFile(args.trace, `${JSON.stringify({ scenario: s.name, command: result.command, intervalMs: 200, systems: traces })}\n`);
    log(`trace written to ${relative(process.cwd(), args.trace) || args.trace}`);
  }
  const failed = Object.entries(result.details).filter(([, d]) => d.errors.length > 0);
  if (failed.length) {
    for (const [k, d] of failed) log(`${k} failed: ${d.errors.join('; ').slice(0, 500)}`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
