// Benchmark check (not a test): can three emulated carriers at RATE Mbit/s each (default 100)
// run at once on this machine? Runs one iperf3 TCP download per carrier at the same time (edge
// namespace -> cloud namespace, each pinned to its carrier by a host route) and reports each
// flow's goodput and each emulator's CPU use (utime + stime from /proc).
//
//   node --conditions=source --import tsx test/emulator/cpu-check.ts [--rate 100] [--seconds 10] [--carriers 3]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createTopology, type Topology } from '../harness/topology.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '10' },
    carriers: { type: 'string', default: '3' },
    reverse: { type: 'boolean', default: true },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const n = Number(values.carriers);

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]); // utime, stime (fields 14 and 15)
}

async function emulatorPid(topo: Topology, i: number): Promise<number> {
  const pids = (await topo.exec(topo.ns.edge, ['ip', 'netns', 'pids', topo.ns.carriers[i]!])).stdout.trim().split('\n').map(Number);
  const node = pids.find((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('emulator/main.ts'));
  if (node === undefined) throw new Error(`no emulator process in ${topo.ns.carriers[i]}`);
  return node;
}

const topo = await createTopology({
  prefix: `emc${process.pid % 1000}`,
  carriers: Array.from({ length: n }, (_, i) => ({ name: `c${i}`, emulate: { up: { rateMbps: rate }, down: { rateMbps: rate } } })),
});
try {
  const servers = [];
  for (let i = 0; i < n; i++) {
    await topo.exec(topo.ns.edge, ['ip', 'route', 'replace', `${topo.addr.cloudCarrierSide(i)}/32`, 'via', topo.addr.carrierEdgeSide(i), 'dev', topo.iface.edgeWan(i)]);
    const s = topo.spawn(topo.ns.cloud, ['iperf3', '-s', '-p', String(5201 + i), '--forceflush'], { name: `iperf3-s${i}` });
    await s.waitFor(/Server listening/, 10_000);
    servers.push(s);
  }
  const pids = await Promise.all(Array.from({ length: n }, (_, i) => emulatorPid(topo, i)));
  const before = pids.map(cpuTicks);
  const t0 = Date.now();
  const results = await Promise.all(Array.from({ length: n }, async (_, i) => {
    const argv = ['iperf3', '-c', topo.addr.cloudCarrierSide(i), '-p', String(5201 + i), '-t', String(seconds), '--json'];
    if (values.reverse) argv.push('-R');
    const r = await topo.exec(topo.ns.edge, argv, { timeoutMs: (seconds + 20) * 1000 });
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return j.end.sum_received.bits_per_second / 1e6;
  }));
  const wallS = (Date.now() - t0) / 1000;
  const hz = 100; // USER_HZ
  const cpu = pids.map((p, i) => ((cpuTicks(p) - before[i]!) / hz / wallS) * 100);
  const stats = await Promise.all(Array.from({ length: n }, (_, i) => topo.emulatorStats(i)));
  console.log(JSON.stringify({
    rateMbps: rate, seconds, goodputMbps: results.map((x) => Math.round(x * 100) / 100),
    emulatorCpuPct: cpu.map((x) => Math.round(x)), totalEmulatorCpuPct: Math.round(cpu.reduce((a, b) => a + b, 0)),
    droppedWrite: stats.map((s) => s.down.droppedWrite + s.up.droppedWrite),
    droppedQueue: stats.map((s) => s.down.droppedQueue + s.up.droppedQueue),
  }));
} finally {
  await topo.destroy();
}
