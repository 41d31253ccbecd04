// The link emulator measured against itself, on real namespaces, TUN devices and TCP stacks:
// a constant 12 Mbit/s link gives 12 Mbit/s of TCP goodput, 40 ms one-way delay adds 80 ms to
// the ping RTT, 5% loss drops 5% of 10k datagrams, an outage delivers nothing for its length.
//
// One topology, four emulated carriers with different settings; the edge reaches the cloud's
// end of carrier i through carrier i (a host route), so every check runs on its own link.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requireRoot } from './harness/root.js';
import { createTopology, type Topology } from './harness/topology.js';
import type { ManagedProcess } from './harness/process.js';

const OUTAGE = { atS: 9, forS: 1.5 };
// iperf3 reports TCP payload: a 1500-byte packet carries 1448 bytes (20 IP + 20 TCP + 12 timestamp option).
const TCP_PAYLOAD_RATIO = 1448 / 1500;

// Plain JavaScript run with `node -e` inside a namespace (the harness cannot open sockets there).
// (iperf3 is not used for the loss check: its UDP mode starts with a single unacknowledged
// datagram, and when the emulated loss takes that one, iperf3 waits forever.)
const RECEIVER = (port: number): string => `const s=require('dgram').createSocket('udp4');let last=0,max=0,n=0;
s.on('message',()=>{const t=performance.now();if(last)max=Math.max(max,t-last);last=t;n++;});
s.bind(${port},()=>console.log('listening'));
process.on('SIGTERM',()=>{console.log(JSON.stringify({n,maxGapMs:max}));process.exit(0);});`;
/** Sends `count` 200-byte datagrams, `perTick` every `ms` milliseconds. */
const SENDER = (host: string, port: number, ms: number, perTick: number, count: number): string =>
  `const s=require('dgram').createSocket('udp4');let k=0;const b=Buffer.alloc(200);
const t=setInterval(()=>{for(let j=0;j<${perTick}&&k<${count};j++,k++)s.send(b,${port},'${host}');
if(k>=${count}){clearInterval(t);setTimeout(()=>process.exit(0),200);}},${ms});`;

async function receiverResult(tp: Topology, receiver: ManagedProcess): Promise<{ n: number; maxGapMs: number }> {
  await tp.release(receiver);
  const m = receiver.output().match(/\{.*\}/);
  if (!m) throw new Error(`receiver printed no result:\n${receiver.output()}`);
  return JSON.parse(m[0]) as { n: number; maxGapMs: number };
}

/** Median of ping's per-reply RTTs: robust to the odd reply delayed by a busy machine. */
function medianRtt(out: string): number {
  const rtts = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  if (rtts.length < 10) throw new Error(`too few ping replies:\n${out}`);
  return rtts[Math.floor(rtts.length / 2)]!;
}

test('link emulator measured against itself', { timeout: 90_000 }, async (t) => {
  if (!requireRoot(t)) return;
  let topo: Topology | undefined;
  try {
    topo = await createTopology({
      prefix: `emu${process.pid % 1000}`,
      carriers: [
        { name: 'rate12', emulate: { up: { rateMbps: 12 }, down: { rateMbps: 12 } } },
        { name: 'delay40', emulate: { up: { rateMbps: 12, delayMs: 40 }, down: { rateMbps: 12, delayMs: 40 } } },
        { name: 'loss5', emulate: { up: { rateMbps: 50, lossPct: 5, seed: 11 }, down: { rateMbps: 50 } } },
        { name: 'outage', emulate: { up: { rateMbps: 12, outages: [OUTAGE] }, down: { rateMbps: 12 } } },
      ],
    });
    const tp = topo;
    const cloudEnd = (i: number): string => tp.addr.cloudCarrierSide(i);
    for (let i = 0; i < 4; i++) {
      await tp.exec(tp.ns.edge, ['ip', 'route', 'replace', `${cloudEnd(i)}/32`, 'via', tp.addr.carrierEdgeSide(i), 'dev', tp.iface.edgeWan(i)]);
    }

    // The outage check runs in the background from the start: the outage is scheduled on the
    // emulator's own clock, OUTAGE.atS after it started.
    const receiver = tp.spawn(tp.ns.cloud, [process.execPath, '-e', RECEIVER(9000)], { name: 'udp-receiver' });
    await receiver.waitFor(/listening/, 10_000);
    const ageS = (await tp.emulatorStats(3)).t;
    const spanMs = (OUTAGE.atS + OUTAGE.forS + 1 - ageS) * 1000;
    const sender: ManagedProcess = tp.spawn(tp.ns.edge, [process.execPath, '-e', SENDER(cloudEnd(3), 9000, 5, 1, Math.ceil(spanMs / 5))], { name: 'udp-sender' });

    const server = tp.spawn(tp.ns.cloud, ['iperf3', '-s', '--forceflush'], { name: 'iperf3-server' });
    await server.waitFor(/Server listening/, 10_000);

    await t.test('constant 12 Mbit/s: TCP goodput within 5% of 12 Mbit/s x 1448/1500', async () => {
      const r = await tp.exec(tp.ns.edge, ['iperf3', '-c', cloudEnd(0), '-R', '-t', '6', '-O', '1', '--json'], { timeoutMs: 30_000 });
      const mbps = (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e6;
      const expected = 12 * TCP_PAYLOAD_RATIO;
      t.diagnostic(`TCP goodput ${mbps.toFixed(3)} Mbit/s (payload; expected ${expected.toFixed(3)}, IP rate ${(mbps / TCP_PAYLOAD_RATIO).toFixed(3)})`);
      assert.ok(Math.abs(mbps - expected) / expected < 0.05, `${mbps} Mbit/s`);
    });

    await t.test('delayMs 40 adds 80 ms to the ping RTT, within 2 ms', async () => {
      const ping = async (i: number): Promise<number> =>
        medianRtt((await tp.exec(tp.ns.edge, ['ping', '-c', '40', '-i', '0.05', cloudEnd(i)])).stdout);
      const base = await ping(0);
      const delayed = await ping(1);
      t.diagnostic(`median RTT ${base.toFixed(2)} ms without delay, ${delayed.toFixed(2)} ms with 40 ms each way: +${(delayed - base).toFixed(2)} ms`);
      assert.ok(Math.abs(delayed - base - 80) <= 2, `+${delayed - base} ms`);
    });

    await t.test('lossPct 5: 5% +- 1% of 10k datagrams lost', async () => {
      const rx = tp.spawn(tp.ns.cloud, [process.execPath, '-e', RECEIVER(9002)], { name: 'udp-receiver-loss' });
      await rx.waitFor(/listening/, 10_000);
      const tx = tp.spawn(tp.ns.edge, [process.execPath, '-e', SENDER(cloudEnd(2), 9002, 1, 10, 10_000)], { name: 'udp-sender-loss' });
      await tx.exited;
      await new Promise((r) => setTimeout(r, 300)); // the last ones through the link
      const { n } = await receiverResult(tp, rx);
      const st = await tp.emulatorStats(2);
      const lost = 10_000 - n;
      t.diagnostic(`${lost} of 10000 datagrams lost (${(lost / 100).toFixed(2)}%); emulator droppedLoss ${st.up.droppedLoss}, droppedQueue ${st.up.droppedQueue}`);
      assert.ok(Math.abs(lost / 100 - 5) <= 1, `${lost / 100}%`);
      assert.equal(st.up.droppedQueue, 0, 'no queue drops mixed in');
    });

    await t.test('an outage delivers nothing for its length', async () => {
      await sender.exited;
      const { n, maxGapMs } = await receiverResult(tp, receiver);
      const st = await tp.emulatorStats(3);
      t.diagnostic(`${n} datagrams arrived; longest gap ${maxGapMs.toFixed(1)} ms for a ${OUTAGE.forS * 1000} ms outage; emulator dropped ${st.up.droppedOutage} during it`);
      assert.ok(maxGapMs >= OUTAGE.forS * 1000 - 10, `longest gap ${maxGapMs} ms`);
      assert.ok(maxGapMs <= OUTAGE.forS * 1000 + 100, `longest gap ${maxGapMs} ms`);
      assert.ok(n > 500, `${n} datagrams`);
    });
  } finally {
    await topo?.destroy();
  }
});
