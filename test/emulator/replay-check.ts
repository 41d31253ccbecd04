// Benchmark check (not a test: the repository cannot depend on ../shared/traces): does a real
// Mahimahi trace replay at its mean rate? One emulated carrier replays the trace downstream; a
// UDP flood well above the trace's peak keeps its queue full for one whole loop period, so the
// link delivers exactly what the trace offers. Reported: the trace's mean, the rate the
// emulator delivered over the run, and the rate iperf3 received (IP bytes: -l 1472 makes every
// datagram one 1500-byte packet), with the deviation from the mean.
//
//   node --conditions=source --import tsx test/emulator/replay-check.ts \
//     [--trace /work/shared/traces/TMobile-LTE-short.down] [--seconds N (default: one loop period)] [--flood 120]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createTopology } from '../harness/topology.js';
import { parseMahimahi, traceMeanMbps, tracePeriodMs } from './trace.js';

const { values } = parseArgs({
  options: {
    trace: { type: 'string', default: '/work/shared/traces/TMobile-LTE-short.down' },
    seconds: { type: 'string' },
    flood: { type: 'string', default: '120' },
  },
});
const trace = parseMahimahi(readFileSync(values.trace, 'utf8'), values.trace);
const meanMbps = traceMeanMbps(trace);
const seconds = values.seconds ? Number(values.seconds) : Math.ceil(tracePeriodMs(trace) / 1000);
process.stderr.write(`replaying ${values.trace}: mean ${meanMbps.toFixed(3)} Mbit/s, period ${tracePeriodMs(trace)} ms; flooding for ${seconds} s\n`);

const topo = await createTopology({
  prefix: `emr${process.pid % 1000}`,
  carriers: [{ name: 'replay', emulate: { up: { rateMbps: 50 }, down: { traceFile: values.trace, queuePackets: 1000 } } }],
});
try {
  const cloudEnd = topo.addr.cloudCarrierSide(0);
  await topo.exec(topo.ns.edge, ['ip', 'route', 'replace', `${cloudEnd}/32`, 'via', topo.addr.carrierEdgeSide(0), 'dev', topo.iface.edgeWan(0)]);
  const server = topo.spawn(topo.ns.cloud, ['iperf3', '-s', '--forceflush'], { name: 'iperf3-server' });
  await server.waitFor(/Server listening/, 10_000);
  const before = await topo.emulatorStats(0);
  const t0 = Date.now();
  const r = await topo.exec(topo.ns.edge, ['iperf3', '-c', cloudEnd, '-R', '-u', '-b', `${values.flood}M`, '-l', '1472', '-t', String(seconds), '--json'], {
    timeoutMs: (seconds + 30) * 1000,
  });
  const after = await topo.emulatorStats(0);
  const wallS = (Date.now() - t0) / 1000;
  type Sum = { bytes: number; seconds: number };
  const j = JSON.parse(r.stdout) as { end: { sum: Sum; sum_received?: Sum } };
  // With -R the client is the receiver: sum_received is its view (older iperf3: sum).
  const rx = j.end.sum_received ?? j.end.sum;
  const receivedIpMbps = (rx.bytes * (1500 / 1472) * 8) / rx.seconds / 1e6;
  const dt = after.t - before.t;
  const deliveredMbps = ((after.down.deliveredBytes - before.down.deliveredBytes) * 8) / dt / 1e6;
  const offeredMbps = ((after.down.capacityBytes - before.down.capacityBytes) * 8) / dt / 1e6;
  const dev = (x: number): string => `${(((x - meanMbps) / meanMbps) * 100).toFixed(2)}%`;
  console.log(JSON.stringify({
    trace: values.trace, seconds, wallS: Math.round(wallS * 10) / 10,
    traceMeanMbps: Math.round(meanMbps * 1000) / 1000,
    emulatorCapacityMbps: Math.round(offeredMbps * 1000) / 1000, capacityDeviation: dev(offeredMbps),
    emulatorDeliveredMbps: Math.round(deliveredMbps * 1000) / 1000, deliveredDeviation: dev(deliveredMbps),
    iperfReceivedIpMbps: Math.round(receivedIpMbps * 1000) / 1000, receivedDeviation: dev(receivedIpMbps),
    within5pct: Math.abs(receivedIpMbps - meanMbps) / meanMbps <= 0.05 && Math.abs(deliveredMbps - meanMbps) / meanMbps <= 0.05,
  }));
} finally {
  await topo.destroy();
}
