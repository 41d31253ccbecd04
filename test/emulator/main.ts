// The link emulator process for one carrier. It runs inside the carrier's namespace, which
// forwards between an `edge` and a `cloud` veth, and splices itself into that forwarding with
// two TUN devices and policy routing:
//
//   ip rule iif edge  lookup 100   (table 100: default dev emu-up)
//   ip rule iif cloud lookup 101   (table 101: default dev emu-dn)
//
// A packet from the edge is routed into emu-up; we read it, pass it through the UP model and
// write it back into emu-up; the kernel then sees it arrive on emu-up (no rule matches that
// iif) and routes it by the main table out of the cloud veth. The same for the way down.
// Layer 3 only, so it carries any IP traffic: our tunnel, kernel MPTCP, plain TCP.
//
// usage: node --conditions=source --import tsx test/emulator/main.ts --spec FILE|- [options]
//   --spec FILE     CarrierEmulation JSON (see spec.ts); "-" reads stdin
//   --edge IF       edge-side interface (default edge); --cloud IF (default cloud)
//   --table N       first routing table number (default 100; N+1 is used too)
//   --stats-ms N    stats line period (default 1000)
//
// stdout: one JSON line per period, on SIGUSR1 and at exit:
//   {"t":secondsSinceStart,"up":DirStats,"down":DirStats}
// stderr: "emulator ready" once the rules are in place; errors.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { realClock, TunDevice } from '@braid/gateway-core';
import { LinkDirection, type DirStats } from './link.js';
import { resolveTrace, validateCarrierEmulation } from './spec.js';

interface Direction {
  name: 'up' | 'down';
  tun: TunDevice;
  link: LinkDirection;
  out: Buffer[];
  /** Packets the kernel refused on write (TUN queue full). */
  droppedWrite: number;
}

function ip(args: string[], allowFailure = false): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    if (!allowFailure) throw new Error(`ip ${args.join(' ')} failed: ${(err as { stderr?: Buffer }).stderr?.toString().trim() ?? (err as Error).message}`, { cause: err });
  }
}

function setConf(dev: string, key: string, value: number): void {
  writeFileSync(`/proc/sys/net/ipv4/conf/${dev}/${key}`, String(value));
}

function main(): void {
  const { values } = parseArgs({
    options: {
      spec: { type: 'string' },
      edge: { type: 'string', default: 'edge' },
      cloud: { type: 'string', default: 'cloud' },
      table: { type: 'string', default: '100' },
      'stats-ms': { type: 'string', default: '1000' },
    },
    strict: true,
  });
  if (values.spec === undefined) throw new Error('--spec FILE (or -) is required');
  const text = readFileSync(values.spec === '-' ? 0 : values.spec, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${values.spec}: not JSON: ${(err as Error).message}`, { cause: err });
  }
  const spec = validateCarrierEmulation(json, 'emulate');
  const table = Number(values.table);
  const statsMs = Number(values['stats-ms']);

  const clock = realClock;
  // Traces are resolved (files read and parsed) before anything is installed, so that a bad
  // trace fails without leaving rules behind.
  const traces = { up: resolveTrace(spec.up, 'emulate.up'), down: resolveTrace(spec.down, 'emulate.down') };
  const newLink = (name: 'up' | 'down'): LinkDirection => {
    const d = spec[name];
    return new LinkDirection({
      trace: traces[name], delayMs: d.delayMs ?? 0, lossPct: d.lossPct ?? 0,
      ...(d.queuePackets !== undefined ? { queuePackets: d.queuePackets } : {}),
      ...(d.queueBytes !== undefined ? { queueBytes: d.queueBytes } : {}),
      outages: d.outages ?? [], ...(d.onOff ? { onOff: d.onOff } : {}), seed: d.seed ?? 1,
    }, clock);
  };
  const tuns = { up: TunDevice.open('emu-up', { batchLimit: 128 }), down: TunDevice.open('emu-dn', { batchLimit: 128 }) };
  const routes: [iif: string, tun: TunDevice, table: number][] = [[values.edge, tuns.up, table], [values.cloud, tuns.down, table + 1]];
  const cleanup = (): void => {
    for (const [iif, , tbl] of routes) ip(['rule', 'del', 'iif', iif, 'lookup', String(tbl)], true);
    tuns.up.close();
    tuns.down.close();
  };
  try {
    for (const [iif, tun, tbl] of routes) {
      // A big transmit queue: the kernel hands packets to us in bursts (GSO segments, batches
      // of a forwarded flow) and must not drop them before the model's own queue sees them.
      ip(['link', 'set', tun.name, 'up', 'txqueuelen', '10000']);
      setConf(tun.name, 'rp_filter', 0);
      setConf(tun.name, 'forwarding', 1);
      ip(['route', 'replace', 'default', 'dev', tun.name, 'table', String(tbl)]);
      ip(['rule', 'del', 'iif', iif, 'lookup', String(tbl)], true); // leftover of a crashed run
      ip(['rule', 'add', 'iif', iif, 'lookup', String(tbl), 'pref', String(tbl)]);
    }
  } catch (err) {
    cleanup();
    throw err;
  }

  // The links (their trace position, outages, on/off) start now that the rules are in place.
  const t0 = clock.nowUs();
  const up: Direction = { name: 'up', tun: tuns.up, link: newLink('up'), out: [], droppedWrite: 0 };
  const down: Direction = { name: 'down', tun: tuns.down, link: newLink('down'), out: [], droppedWrite: 0 };
  const dirs = [up, down] as const;

  const flush = (d: Direction): void => {
    if (d.link.poll(d.out) === 0) return;
    const written = d.tun.writeBatch(d.out);
    // Written back into the same TUN: the kernel forwards it on. A full kernel queue loses the rest.
    d.droppedWrite += d.out.length - written;
    d.out.length = 0;
  };
  for (const d of dirs) {
    d.tun.onError((err) => {
      process.stderr.write(`emulator: ${d.tun.name}: ${err.message}\n`);
      shutdown(1);
    });
    d.tun.onPackets((packets) => {
      for (let k = 0; k < packets.length; k++) d.link.enqueue(packets[k]!);
      flush(d);
      if (d.link.pending) ensureTicking();
    });
  }
  // Node's timers are ~1 ms coarse: one tick per millisecond releases everything due, and the
  // model catches up on every opportunity it passed, so the rate stays exact and only the
  // timing of single packets is quantised to about a millisecond. The tick runs only while
  // packets are in flight (idle, it would cost a few % of a core per emulator for nothing).
  let tick: NodeJS.Timeout | undefined;
  const onTick = (): void => {
    flush(up);
    flush(down);
    if (!up.link.pending && !down.link.pending && tick) {
      clearInterval(tick);
      tick = undefined;
    }
  };
  const ensureTicking = (): void => {
    tick ??= setInterval(onTick, 1);
  };
  const stats = (d: Direction): DirStats & { droppedWrite: number } => ({ ...d.link.stats, droppedWrite: d.droppedWrite });
  const report = (): void => {
    // Bring the counters (capacity offered) up to now even when idle.
    flush(up);
    flush(down);
    process.stdout.write(`${JSON.stringify({ t: Math.round((clock.nowUs() - t0) / 1000) / 1000, up: stats(up), down: stats(down) })}\n`);
  };
  const statsTimer = setInterval(report, statsMs);
  process.on('SIGUSR1', report);

  let done = false;
  const shutdown = (code: number): void => {
    if (done) return;
    done = true;
    if (tick) clearInterval(tick);
    clearInterval(statsTimer);
    report();
    cleanup();
    process.stdout.write('', () => process.exit(code));
  };
  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));
  process.stderr.write(`emulator ready: up ${up.link.traceMeanMbps.toFixed(2)} Mbit/s, down ${down.link.traceMeanMbps.toFixed(2)} Mbit/s (trace means)\n`);
}

try {
  main();
} catch (err) {
  process.stderr.write(`emulator: ${(err as Error).message}\n`);
  process.exit(2);
}
