// The gpsd context source against a real gpsd, fed by gpsfake (Debian gpsd, gpsd-clients)
// replaying an NMEA track of a train at 300 km/h that the test generates. Without gpsfake the
// test fails under CI=true (scripts/setup.sh installs it) and skips with the reason elsewhere.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { GpsdSource } from '../src/context/gpsd.js';
import type { MotionContext } from '../src/context/types.js';
import { distanceM, nmeaChecksum, nmeaTrack, trackFixes } from './nmea-track.js';

const TRACK = { startLat: 39.9042, startLon: 116.4074, speedKmh: 300, courseDeg: 150, fixes: 400 };

function requireGpsfake(t: TestContext): boolean {
  const missing = ['gpsfake', 'gpsd'].filter((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status !== 0);
  if (missing.length === 0) return true;
  const reason = `needs ${missing.join(' and ')} (Debian packages gpsd, gpsd-clients; scripts/setup.sh installs them)`;
  if (process.env.CI === 'true') throw new Error(`${reason}, and CI=true: this test must not be skipped in CI`);
  console.log(`# skipped ${t.name}: ${reason}`);
  t.skip(reason);
  return false;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  await new Promise<void>((r) => srv.close(() => r()));
  if (typeof addr !== 'object' || addr === null) throw new Error('no port');
  return addr.port;
}

const dir = mkdtempSync(join(tmpdir(), 'braid-gpsd-'));
const started: ChildProcess[] = [];
after(() => {
  for (const p of started) stopGpsfake(p);
  rmSync(dir, { recursive: true, force: true });
});

/** gpsfake (and the gpsd it runs) in its own process group, so both stop together. */
function startGpsfake(port: number, file: string): ChildProcess {
  // -1: the log once; -c 0.1: 100 ms between sentences (a fix every 200 ms of wall time);
  // -n: gpsd reads the log without waiting for a client.
  const p = spawn('gpsfake', ['-1', '-q', '-n', '-P', String(port), '-c', '0.1', file], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  p.on('exit', (code) => {
    if (code && code !== 0 && !p.killed) console.log(`# gpsfake exited ${code}: ${err.trim()}`);
  });
  started.push(p);
  return p;
}

function stopGpsfake(p: ChildProcess): void {
  if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
  const group = -p.pid;
  try {
    process.kill(group, 'SIGTERM');
  } catch { /* already gone */ }
  // gpsfake (python) sometimes ignores TERM while its gpsd exits: make sure the group is gone.
  setTimeout(() => {
    try {
      process.kill(group, 'SIGKILL');
    } catch { /* gone */ }
  }, 1000).unref();
}

async function until<T>(what: string, timeoutMs: number, f: () => T | undefined): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('gpsd context source: what a gpsd-like peer sends (a real TCP socket, no gpsfake needed)', () => {
  test('asks for JSON reports; garbage lines are dropped, counted and logged once; reports without a fix carry no position', async (t) => {
    const got: string[] = [];
    const peers: Socket[] = [];
    const srv = createServer((c) => {
      peers.push(c);
      c.setEncoding('utf8');
      c.on('data', (d: string) => got.push(d));
      c.write('{"class":"VERSION","release":"3.22","rev":"3.22","proto_major":3,"proto_minor":14}\n');
      c.write('not json at all\n{"class":"TPV","mode":1}\n{"class":"TPV","mode":2,"lat":48.1,"lon":11.5,"speed":');
      // The rest of the line in a later chunk: a report split across reads is still one report.
      setTimeout(() => c.write('25.0}\n<<binary junk>>\n{"class":"SKY","satellites":[]}\n'), 50);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    t.after(() => {
      for (const p of peers) p.destroy();
      srv.close();
    });
    const port = (srv.address() as { port: number }).port;
    const msgs: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => { msgs.push(String((JSON.parse(l) as { msg: string }).msg)); } });
    const src = new GpsdSource({ host: '127.0.0.1', port, logger });
    t.after(() => src.stop());
    await src.start();
    await until('the split TPV', 5000, () => (src.snapshot().motion ? true : undefined));
    await until('all lines', 5000, () => (src.counters.reports >= 4 && src.counters.badLines >= 2 ? true : undefined));
    assert.equal(got.join(''), '?WATCH={"enable":true,"json":true}\n');
    assert.deepEqual({ ...src.snapshot().motion, atMs: 0 }, { latitude: 48.1, longitude: 11.5, speedKmh: 90, atMs: 0 });
    assert.equal(src.counters.badLines, 2);
    assert.equal(src.counters.tpv, 2, 'the mode-1 TPV counted, not used');
    assert.equal(msgs.filter((m) => m.startsWith('gpsd sent a line that is not JSON')).length, 1);
  });
});

describe('gpsd context source (real gpsd via gpsfake)', () => {
  test('the generated track is valid NMEA (checksums as gpsd checks them)', () => {
    const text = nmeaTrack({ ...TRACK, fixes: 2 });
    const lines = text.trim().split('\r\n');
    assert.equal(lines.length, 4);
    for (const l of lines) {
      const m = /^\$([^*]+)\*([0-9A-F]{2})$/.exec(l);
      assert.ok(m, l);
      assert.equal(nmeaChecksum(m[1]!), m[2]);
    }
    // 300 km/h = 161.99 knots in the RMC sentence.
    assert.match(lines[1]!, /^\$GPRMC,120000\.00,A,3954\.25200,N,11624\.44400,E,161\.99,150\.0,231126,,,A\*/);
  });

  test('a train at 300 km/h: speed ~300 km/h, the position moves along the track, and it reconnects when gpsd restarts', async (t) => {
    if (!requireGpsfake(t)) return;
    const file = join(dir, 'train-300.nmea');
    writeFileSync(file, nmeaTrack(TRACK));
    const port = await freePort();
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => { lines.push(String((JSON.parse(l) as { msg: string }).msg)); } });
    const src = new GpsdSource({ host: '127.0.0.1', port, logger, reconnectMinMs: 100, reconnectMaxMs: 500 });
    const seen: MotionContext[] = [];
    src.onChange(() => {
      const m = src.snapshot().motion;
      if (m) seen.push(m);
    });
    // The source starts before gpsd: it must say so once and connect when gpsd comes up.
    await src.start();
    t.after(() => src.stop());
    await until('the first failed connection', 5000, () => (lines.some((l) => l.includes('unreachable')) ? true : undefined));

    let gf = startGpsfake(port, file);
    await until('5 fixes with a speed', 15_000, () => (seen.filter((m) => m.speedKmh !== undefined).length >= 5 ? true : undefined));
    const withSpeed = seen.filter((m) => m.speedKmh !== undefined);
    for (const m of withSpeed) assert.ok(Math.abs(m.speedKmh! - 300) < 1, `speed ${m.speedKmh} km/h, expected ~300`);
    const first = withSpeed[0]!;
    const last = withSpeed[withSpeed.length - 1]!;
    const moved = distanceM({ lat: first.latitude!, lon: first.longitude! }, { lat: last.latitude!, lon: last.longitude! });
    // Consecutive fixes are 1 s of track apart: 83.3 m each at 300 km/h.
    const steps = withSpeed.length - 1;
    assert.ok(moved > 0.9 * 83.3 * steps && moved < 1.1 * 83.3 * steps, `moved ${moved.toFixed(1)} m over ${steps} fixes`);
    assert.ok(last.latitude! < first.latitude! && last.longitude! > first.longitude!, 'course 150: south-east');
    // Every position lies on the generated track.
    const fixes = trackFixes(TRACK);
    for (const m of withSpeed) {
      const nearest = Math.min(...fixes.map((f) => distanceM(f, { lat: m.latitude!, lon: m.longitude! })));
      assert.ok(nearest < 1, `fix ${m.latitude},${m.longitude} is ${nearest.toFixed(2)} m from the track`);
    }
    assert.equal(src.counters.connects, 1);
    assert.equal(lines.filter((l) => l.includes('unreachable')).length, 1, 'connection failures logged once');

    // gpsd restarts (a new gpsfake on the same port, the track from its start).
    stopGpsfake(gf);
    await until('the source to notice gpsd is gone', 10_000, () => (src.connected ? undefined : true));
    const before = seen.length;
    gf = startGpsfake(port, file);
    await until('fixes from the restarted gpsd', 20_000, () => (seen.length >= before + 3 ? true : undefined));
    assert.ok(src.counters.connects >= 2, `connects ${src.counters.connects}`);
    const after = seen.slice(before).filter((m) => m.speedKmh !== undefined);
    assert.ok(after.length > 0 && after.every((m) => Math.abs(m.speedKmh! - 300) < 1));
    assert.ok(lines.some((l) => l.startsWith('connected to gpsd at 127.0.0.1:')));
    stopGpsfake(gf);
  });
});
