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
const RECEIVER = `const s=require('dgram').createSocket('udp4');let last=0,max=0,n=0;
s.on('message',()=>{const t=performance.now();if(last)max=Math.max(max,t-last);last=t;n++;});
s.bind(9000,()=>console.log('listening'));
process.on('SIGTERM',()=>{console.log(JSON.stringify({n,maxGapMs:max}));process.exit(0);});`;
const SENDER = (host: string, ms: number, count: number): string => `const s=require('dgram').createSocket('udp4');let k=0;
const b=Buffer.alloc(200);const t=setInterval(()=>{s.send(b,9000,'${host}');if(++k>=${count}){clearInterval(t);setTimeout(()=>process.exit(0),100);}},${ms});`;

function rtt(out: string): number {
  const m = out.match(/= [\d.]+\/([\d.]+)\//);
  if (!m) throw new Error(`no rtt in ping output:\n${out}`);
  return Number(m[1]);
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
    const receiver = tp.spawn(tp.ns.cloud, [process.execPath, '-e', RECEIVER], { name: 'udp-receiver' });
    await receiver.waitFor(/listening/, 10_000);
    const ageS = (await tp.emulatorStats(3)).t;
    const spanMs = (OUTAGE.atS + OUTAGE.forS + 1 - ageS) * 1000;
    const sender: ManagedProcess = tp.spawn(tp.ns.edge, [process.execPath, '-e', SENDER(cloudEnd(3), 5, Math.ceil(spanMs / 5))], { name: 'udp-sender' });

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
        rtt((await tp.exec(tp.ns.edge, ['ping', '-q', '-c', '30', '-i', '0.05', cloudEnd(i)])).stdout);
      const base = await ping(0);
      const delayed = await ping(1);
      t.diagnostic(`RTT ${base.toFixed(2)} ms without delay, ${delayed.toFixed(2)} ms with 40 ms each way: +${(delayed - base).toFixed(2)} ms`);
      assert.ok(Math.abs(delayed - base - 80) <= 2, `+${delayed - base} ms`);
    });

    await t.test('lossPct 5: 5% +- 1% of 10k datagrams lost', async () => {
      const r = await tp.exec(tp.ns.edge, ['iperf3', '-c', cloudEnd(2), '-u', '-b', '20M', '-l', '500', '-k', '10000', '--json'], { timeoutMs: 30_000 });
      const sum = (JSON.parse(r.stdout) as { end: { sum: { lost_packets: number; packets: number } } }).end.sum;
      const st = await tp.emulatorStats(2);
      const pct = (sum.lost_packets / sum.packets) * 100;
      t.diagnostic(`iperf3: ${sum.lost_packets} of ${sum.packets} lost (${pct.toFixed(2)}%); emulator droppedLoss ${st.up.droppedLoss}, droppedQueue ${st.up.droppedQueue}`);
      assert.ok(sum.packets >= 10_000, `${sum.packets} packets`);
      assert.ok(Math.abs(pct - 5) <= 1, `${pct}%`);
      assert.equal(st.up.droppedQueue, 0, 'no queue drops mixed in');
    });

    await t.test('an outage delivers nothing for its length', async () => {
      await sender.exited;
      await tp.release(receiver);
      const m = receiver.output().match(/\{.*\}/);
      assert.ok(m, receiver.output());
      const { n, maxGapMs } = JSON.parse(m[0]) as { n: number; maxGapMs: number };
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
