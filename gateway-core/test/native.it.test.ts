// The addon against the real kernel, each scenario inside a network namespace of its own.
//
// A TUN device and the sockets that talk through it must belong to a process IN the namespace,
// and Node cannot setns(). So this file runs twice: the test runner's copy creates a namespace
// per scenario and re-runs this same file under `ip netns exec` with BRAID_NATIVE_SCENARIO set;
// that copy runs the one scenario (plain asserts, exit code 1 on failure) instead of tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireRoot } from '../../test/harness/root.js';
import { closeFd, openTun, setBindToDevice, setMark, setMtuDiscover, socketFd } from '../src/native/index.js';
import { TunDevice } from '../src/tun/tun-device.js';
import { until } from './wait.js';

const SELF = fileURLToPath(import.meta.url);
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

// ---------------------------------------------------------------- helpers (run in the namespace)

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

function ipOk(...args: string[]): boolean {
  return spawnSync('ip', args, { stdio: 'ignore' }).status === 0;
}

function txPackets(dev: string): number {
  return Number(readFileSync(`/sys/class/net/${dev}/statistics/tx_packets`, 'utf8').trim());
}

async function udpSocket(address: string): Promise<dgram.Socket> {
  const sock = dgram.createSocket('udp4');
  sock.bind(0, address);
  await once(sock, 'listening');
  return sock;
}

function sendAsync(sock: dgram.Socket, payload: Buffer, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => sock.send(payload, port, address, (err) => (err ? reject(err) : resolve())));
}

function ipv4Bytes(a: string): number[] {
  return a.split('.').map(Number);
}

function onesComplementSum(buf: Buffer, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2 === 1) sum += buf[buf.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** A complete IPv4/UDP packet with valid header and UDP checksums. */
function ipv4Udp(src: string, dst: string, sport: number, dport: number, payload: Buffer): Buffer {
  const udpLen = 8 + payload.length;
  const pkt = Buffer.alloc(20 + udpLen);
  pkt[0] = 0x45;
  pkt.writeUInt16BE(pkt.length, 2);
  pkt.writeUInt16BE(0x4000, 6); // DF
  pkt[8] = 64;
  pkt[9] = 17;
  Buffer.from(ipv4Bytes(src)).copy(pkt, 12);
  Buffer.from(ipv4Bytes(dst)).copy(pkt, 16);
  pkt.writeUInt16BE(~onesComplementSum(pkt.subarray(0, 20)) & 0xffff, 10);
  pkt.writeUInt16BE(sport, 20);
  pkt.writeUInt16BE(dport, 22);
  pkt.writeUInt16BE(udpLen, 24);
  payload.copy(pkt, 28);
  const pseudo = Buffer.alloc(12);
  pkt.copy(pseudo, 0, 12, 20);
  pseudo[9] = 17;
  pseudo.writeUInt16BE(udpLen, 10);
  const sum = ~onesComplementSum(pkt.subarray(20), onesComplementSum(pseudo)) & 0xffff;
  pkt.writeUInt16BE(sum === 0 ? 0xffff : sum, 26);
  return pkt;
}

interface UdpView { src: string; dst: string; sport: number; dport: number; payload: Buffer }

/** Parses an IPv4/UDP packet, checking the header checksum; undefined for anything else. */
function parseIpv4Udp(pkt: Buffer): UdpView | undefined {
  if (pkt.length < 28 || pkt[0]! >> 4 !== 4 || pkt[9] !== 17) return undefined;
  const ihl = (pkt[0]! & 0x0f) * 4;
  assert.equal(pkt.readUInt16BE(2), pkt.length, 'IPv4 total length equals the packet read');
  assert.equal(onesComplementSum(pkt.subarray(0, ihl)), 0xffff, 'IPv4 header checksum is valid');
  const addr = (o: number) => [...pkt.subarray(o, o + 4)].join('.');
  return {
    src: addr(12), dst: addr(16),
    sport: pkt.readUInt16BE(ihl), dport: pkt.readUInt16BE(ihl + 2),
    payload: pkt.subarray(ihl + 8, ihl + pkt.readUInt16BE(ihl + 4)),
  };
}

/** brt0 at 10.99.0.1/24, up. */
function tunUp(opts: { txqueuelen?: number } = {}): TunDevice {
  const tun = TunDevice.open('brt0');
  assert.equal(tun.name, 'brt0');
  ip('addr', 'add', '10.99.0.1/24', 'dev', tun.name);
  if (opts.txqueuelen !== undefined) ip('link', 'set', 'dev', tun.name, 'txqueuelen', String(opts.txqueuelen));
  ip('link', 'set', 'dev', tun.name, 'up');
  return tun;
}

/**
 * Two carriers in the namespace, veth pairs d0-d0p and d1-d1p (this kernel has no dummy
 * driver). 10.98.9.0/24 is routed out of d0 in the main table. Static neighbour entries let
 * packets leave at once without ARP, and IPv6 is off, so tx_packets counts only our datagrams;
 * the peers drop them (wrong destination MAC), so nothing leaves the namespace.
 */
function twoCarriers(): void {
  writeFileSync('/proc/sys/net/ipv6/conf/all/disable_ipv6', '1');
  writeFileSync('/proc/sys/net/ipv6/conf/default/disable_ipv6', '1');
  for (const [dev, cidr, mac] of [['d0', '10.98.1.1/24', '02:00:00:00:09:00'], ['d1', '10.98.2.1/24', '02:00:00:00:09:01']] as const) {
    ip('link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}p`);
    ip('addr', 'add', cidr, 'dev', dev);
    ip('link', 'set', `${dev}p`, 'up');
    ip('link', 'set', dev, 'up');
    ip('neigh', 'add', '10.98.9.9', 'lladdr', mac, 'dev', dev, 'nud', 'permanent');
  }
  ip('route', 'add', '10.98.9.0/24', 'dev', 'd0');
  // A worse route out of d1, so that a socket bound to d1 has a route of its own to take.
  ip('route', 'add', '10.98.9.0/24', 'dev', 'd1', 'metric', '100');
}

/** Sends n datagrams to 10.98.9.9 (the veth peer drops them) and returns how many left d0 and d1. */
async function sendCounted(sock: dgram.Socket, n: number, size = 16): Promise<{ d0: number; d1: number }> {
  const before = { d0: txPackets('d0'), d1: txPackets('d1') };
  for (let i = 0; i < n; i++) await sendAsync(sock, Buffer.alloc(size, i), 9, '10.98.9.9');
  return { d0: txPackets('d0') - before.d0, d1: txPackets('d1') - before.d1 };
}

// ---------------------------------------------------------------- scenarios

const scenarios: Record<string, { title: string; run: () => Promise<void> }> = {
  readWrite: {
    title: 'a UDP datagram routed into the TUN is read as an IPv4 packet; a packet written to the TUN reaches a socket',
    async run() {
      const tun = tunUp();
      const sock = await udpSocket('10.99.0.1');
      try {
        const seen: UdpView[] = [];
        tun.onPackets((packets) => {
          for (const p of packets) {
            const u = parseIpv4Udp(p);
            if (u !== undefined) seen.push(u);
          }
        });
        await sendAsync(sock, Buffer.from('hello braid'), 9999, '10.99.0.2');
        await until('the datagram on the TUN', () => seen.length > 0);
        const u = seen[0]!;
        assert.deepEqual([u.src, u.dst, u.sport, u.dport], ['10.99.0.1', '10.99.0.2', sock.address().port, 9999]);
        assert.equal(u.payload.toString(), 'hello braid');

        const got: { msg: string; from: string; port: number }[] = [];
        sock.on('message', (msg, rinfo) => got.push({ msg: msg.toString(), from: rinfo.address, port: rinfo.port }));
        const port = sock.address().port;
        assert.equal(tun.write(ipv4Udp('10.99.0.2', '10.99.0.1', 5555, port, Buffer.from('from the tun'))), true);
        await until('the written packet on the socket', () => got.length === 1);
        assert.deepEqual(got[0], { msg: 'from the tun', from: '10.99.0.2', port: 5555 });

        const batch = [1, 2, 3].map((i) => ipv4Udp('10.99.0.2', '10.99.0.1', 5555, port, Buffer.from(`batch ${i}`)));
        assert.equal(tun.writeBatch(batch), 3);
        await until('the batch on the socket', () => got.length === 4);
        assert.deepEqual(got.slice(1).map((g) => g.msg), ['batch 1', 'batch 2', 'batch 3']);
      } finally {
        sock.close();
        tun.close();
      }
    },
  },

  burst: {
    title: '2000 datagrams sent in bursts arrive complete, in batches of more than one packet and at most 64',
    async run() {
      const tun = tunUp({ txqueuelen: 4096 });
      const sock = await udpSocket('10.99.0.1');
      try {
        const batches: number[] = [];
        const seq = new Set<number>();
        tun.onPackets((packets) => {
          batches.push(packets.length);
          for (const p of packets) {
            const u = parseIpv4Udp(p);
            if (u !== undefined && u.dport === 9999) seq.add(u.payload.readUInt32BE(0));
          }
        });
        // Each burst is queued by the kernel before the event loop can poll the TUN.
        for (let burst = 0; burst < 8; burst++) {
          for (let i = 0; i < 250; i++) {
            const b = Buffer.alloc(64);
            b.writeUInt32BE(burst * 250 + i, 0);
            sock.send(b, 9999, '10.99.0.2');
          }
          await sleep(20);
        }
        await until('2000 packets on the TUN', () => seq.size === 2000);
        const max = Math.max(...batches);
        console.log(`batches: ${batches.length}, largest ${max}`);
        assert.ok(max > 1, `expected a batch of more than one packet, got at most ${max}`);
        assert.ok(max <= 64, `batches are capped at 64, got ${max}`);

        // And the other way: 2000 packets written in batches, all delivered to the socket.
        let received = 0;
        sock.on('message', () => { received++; });
        const port = sock.address().port;
        for (let chunk = 0; chunk < 20; chunk++) {
          const pkts = Array.from({ length: 100 }, (_, i) => ipv4Udp('10.99.0.2', '10.99.0.1', 5555, port, Buffer.from(`p${chunk * 100 + i}`)));
          assert.equal(tun.writeBatch(pkts), 100);
          await until(`chunk ${chunk} on the socket`, () => received === (chunk + 1) * 100);
        }
      } finally {
        sock.close();
        tun.close();
      }
    },
  },

  kernelName: {
    title: 'an empty name lets the kernel choose tunN; closing the fd removes the device',
    async run() {
      const tun = TunDevice.open('');
      assert.match(tun.name, /^tun\d+$/);
      assert.ok(ipOk('link', 'show', 'dev', tun.name));
      tun.close();
      assert.ok(!ipOk('link', 'show', 'dev', tun.name), 'a non-persistent TUN disappears with its fd');
    },
  },

  close: {
    title: 'close is idempotent, stops callbacks (also from inside a callback) and makes write throw',
    async run() {
      // Packets waiting in the TUN queue when close() runs are never delivered: they are queued
      // before polling starts, and the poll is started and closed in the same tick.
      let tun = tunUp({ txqueuelen: 1000 });
      let sock = await udpSocket('10.99.0.1');
      let calls = 0;
      for (let i = 0; i < 50; i++) await sendAsync(sock, Buffer.from('x'), 9999, '10.99.0.2');
      tun.onPackets(() => { calls++; });
      tun.close();
      tun.close();
      assert.equal(tun.isClosed, true);
      await sleep(100);
      assert.equal(calls, 0);
      assert.throws(() => tun.write(Buffer.alloc(20)), /TUN brt0 is closed/);
      assert.throws(() => tun.onPackets(() => {}), /closed/);
      sock.close();

      // close() inside the callback: exactly one batch is delivered, nothing after it.
      tun = tunUp({ txqueuelen: 1000 });
      sock = await udpSocket('10.99.0.1');
      calls = 0;
      let firstBatch = 0;
      const t = tun;
      t.onPackets((packets) => { calls++; firstBatch = packets.length; t.close(); });
      for (let i = 0; i < 200; i++) sock.send(Buffer.from('y'), 9999, '10.99.0.2');
      await until('the first batch', () => calls > 0);
      await sleep(100);
      assert.equal(calls, 1);
      assert.ok(firstBatch > 1);
      sock.close();
    },
  },

  callbackThrows: {
    title: 'an exception thrown by the packet callback becomes an uncaught exception, as for other I/O',
    async run() {
      const tun = tunUp();
      const sock = await udpSocket('10.99.0.1');
      try {
        const caught = new Promise<Error>((resolve) => process.once('uncaughtException', resolve));
        tun.onPackets(() => { throw new Error('boom from onPackets'); });
        sock.send(Buffer.from('z'), 9999, '10.99.0.2');
        const timeout = new Promise<Error>((resolve) => setTimeout(() => resolve(new Error('no uncaughtException within 3 s')), 3000).unref());
        const err = await Promise.race([caught, timeout]);
        assert.equal(err.message, 'boom from onPackets');
      } finally {
        sock.close();
        tun.close();
      }
    },
  },

  bindToDevice: {
    title: 'SO_BINDTODEVICE sends through the named device; an unknown name is ENODEV',
    async run() {
      twoCarriers();
      const sock = await udpSocket('0.0.0.0');
      try {
        const fd = socketFd(sock);
        assert.deepEqual(await sendCounted(sock, 5), { d0: 5, d1: 0 }, 'unbound: the best route, d0');
        setBindToDevice(fd, 'd1');
        assert.deepEqual(await sendCounted(sock, 5), { d0: 0, d1: 5 }, 'bound to d1');
        setBindToDevice(fd, '');
        assert.deepEqual(await sendCounted(sock, 5), { d0: 5, d1: 0 }, 'binding removed');
        assert.throws(() => setBindToDevice(fd, 'nosuchdev0'), (e: NodeJS.ErrnoException) => {
          assert.equal(e.code, 'ENODEV');
          assert.match(e.message, new RegExp(`SO_BINDTODEVICE "nosuchdev0", fd ${fd}\\) failed: ENODEV`));
          return true;
        });
      } finally {
        sock.close();
      }
    },
  },

  mark: {
    title: 'SO_MARK takes effect in policy routing (ip rule fwmark)',
    async run() {
      twoCarriers();
      ip('rule', 'add', 'fwmark', '42', 'table', '100', 'pref', '100');
      ip('route', 'add', '10.98.9.0/24', 'dev', 'd1', 'table', '100');
      const sock = await udpSocket('0.0.0.0');
      try {
        const fd = socketFd(sock);
        assert.deepEqual(await sendCounted(sock, 5), { d0: 5, d1: 0 }, 'no mark: main table, d0');
        setMark(fd, 42);
        assert.deepEqual(await sendCounted(sock, 5), { d0: 0, d1: 5 }, 'mark 42: table 100, d1');
        setMark(fd, 0);
        assert.deepEqual(await sendCounted(sock, 5), { d0: 5, d1: 0 }, 'mark cleared');
      } finally {
        sock.close();
      }
    },
  },

  mtuDiscover: {
    title: "IP_MTU_DISCOVER 'do' and 'probe' refuse a datagram over the MTU (EMSGSIZE); 'dont' and 'want' fragment it",
    async run() {
      twoCarriers();
      ip('link', 'set', 'dev', 'd0', 'mtu', '1280');
      const sock = await udpSocket('0.0.0.0');
      try {
        const fd = socketFd(sock);
        for (const mode of ['do', 'probe'] as const) {
          setMtuDiscover(fd, mode);
          await assert.rejects(sendCounted(sock, 1, 1400), { code: 'EMSGSIZE' }, mode);
          assert.deepEqual(await sendCounted(sock, 1, 1000), { d0: 1, d1: 0 }, `${mode}: a datagram that fits`);
        }
        for (const mode of ['dont', 'want'] as const) {
          setMtuDiscover(fd, mode);
          assert.deepEqual(await sendCounted(sock, 1, 1400), { d0: 2, d1: 0 }, `${mode}: two fragments`);
        }
      } finally {
        sock.close();
      }
    },
  },

  badInput: {
    title: 'bad input gives clear errors: long or invalid names, a non-IP packet, a TUN fd used as a socket',
    async run() {
      assert.throws(() => openTun('braid-too-long-0'), { code: 'ERR_IFNAME_TOO_LONG' });
      assert.throws(() => TunDevice.open('bad/name'), { code: 'EINVAL', message: /ioctl\(TUNSETIFF, "bad\/name"\) failed: EINVAL/ });
      const tun = tunUp();
      try {
        assert.throws(() => tun.write(Buffer.alloc(20)), { code: 'EINVAL', message: new RegExp(`write\\(TUN fd ${tun.fd}, 20 bytes\\) failed`) });
        assert.throws(() => setBindToDevice(tun.fd, 'lo'), { code: 'ENOTSOCK' });
        assert.throws(() => setMark(tun.fd, 1), { code: 'ENOTSOCK', message: /SO_MARK 1, fd \d+/ });
        assert.throws(() => setMtuDiscover(tun.fd, 'do'), { code: 'ENOTSOCK' });
        // A second open of the same name while the first fd holds it.
        assert.throws(() => openTun('brt0'), { code: 'EBUSY' });
      } finally {
        tun.close();
      }
      assert.throws(() => closeFd(tun.fd), { code: 'EBADF' });
    },
  },
};

// ---------------------------------------------------------------- entry points

const scenarioName = process.env.BRAID_NATIVE_SCENARIO;
if (scenarioName !== undefined) {
  const s = scenarios[scenarioName];
  if (s === undefined) throw new Error(`unknown scenario ${scenarioName}`);
  // Keep the process from hanging on a forgotten handle: the runner's copy would wait for it.
  const guard = setTimeout(() => { console.error(`scenario ${scenarioName} did not finish in 20 s`); process.exit(2); }, 20_000);
  await s.run();
  clearTimeout(guard);
} else {
  for (const [name, s] of Object.entries(scenarios)) {
    test(s.title, (t) => {
      if (!requireRoot(t)) return;
      const ns = `brnt-${process.pid}-${name}`.slice(0, 40);
      execFileSync('ip', ['netns', 'add', ns]);
      try {
        const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--conditions=source', '--import', 'tsx', SELF], {
          cwd: REPO_ROOT,
          env: { ...process.env, BRAID_NATIVE_SCENARIO: name },
          encoding: 'utf8',
          timeout: 30_000,
        });
        for (const line of r.stdout.split('\n')) if (line !== '') t.diagnostic(line);
        assert.equal(r.status, 0, `scenario ${name} failed (status ${r.status}, signal ${r.signal}):\n${r.stderr}`);
      } finally {
        spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      }
    });
  }
}
