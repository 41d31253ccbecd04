// The emulator's S2-5 context: radio KPIs from the carrier models (following the emulated
// capacity), the context file the feed rewrites, and the edge's emulator source reading it;
// the composite merge and the S2-12 high-speed test on what comes out.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import {
  CompositeSource, EmulatorSource, isHighSpeed, mergeSnapshots, type ContextSnapshot, type ContextSource,
} from '@braid/gateway-core';
import { speedAt, startContextFeed } from './context-feed.js';
import { MODEL_NAMES, modelCarrier, modelOutages, modelRadio } from './models.js';

const dir = mkdtempSync(join(tmpdir(), 'braid-ctx-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function capture() {
  const msgs: string[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => { msgs.push(String((JSON.parse(l) as { msg: string }).msg)); } });
  return { logger, msgs };
}

/** Pearson correlation. */
function correlation(x: number[], y: number[]): number {
  const n = x.length;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
    syy += (y[i]! - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

describe('carrier models: radio KPIs', () => {
  test('SINR follows the emulated down capacity; RSRP/RSRQ stay in 3GPP ranges; the cell changes at each handover', () => {
    for (const name of MODEL_NAMES) {
      const durationS = 120;
      const track = modelRadio(name, 7, durationS, 500);
      assert.equal(track.samples.length, durationS * 2, name);
      assert.deepEqual(modelRadio(name, 7, durationS, 500), track, `${name}: same seed, same values`);
      // Capacity per 500 ms step from the very trace the emulator replays (opportunities x 1500 B).
      const trace = modelCarrier(name, 7, durationS).down.trace!;
      const perStep = new Array<number>(track.samples.length).fill(0);
      for (const ms of trace) {
        const k = Math.floor((ms - 1) / 500);
        if (k < perStep.length) perStep[k]! += 1;
      }
      const live = track.samples.map((s, i) => ({ s, c: perStep[i]! })).filter((x) => !x.s.outage && x.c > 0);
      const r = correlation(live.map((x) => Math.log(x.c)), live.map((x) => x.s.sinrDb));
      assert.ok(r > 0.8, `${name}: SINR vs log capacity correlation ${r.toFixed(3)}`);
      for (const s of track.samples) {
        assert.ok(s.rsrpDbm >= -140 && s.rsrpDbm <= -44, `${name} rsrp ${s.rsrpDbm}`);
        assert.ok(s.rsrqDb >= -19.5 && s.rsrqDb <= -3, `${name} rsrq ${s.rsrqDb}`);
        assert.match(s.cellId, /^[0-9A-F]{8}$/);
      }
      const lastMs = track.samples[track.samples.length - 1]!.atMs;
      const endedOutages = modelOutages(name, 7, durationS).filter(([, end]) => end <= lastMs).length;
      const cells = new Set(track.samples.map((s) => s.cellId)).size;
      assert.equal(cells, endedOutages + 1, `${name}: one serving cell per outage-separated stretch`);
    }
  });

  test('a speed profile is joined linearly and held after its last point', () => {
    const p = [{ atS: 0, kmh: 120 }, { atS: 10, kmh: 300 }];
    assert.equal(speedAt(p, 0), 120);
    assert.equal(speedAt(p, 5), 210);
    assert.equal(speedAt(p, 60), 300);
    assert.equal(speedAt(250, 3), 250);
  });
});

describe('emulator context source reading the feed\'s file', () => {
  test('radio per carrier and the vehicle\'s motion as the feed wrote them; high speed once the train passes 160 km/h', async () => {
    const file = join(dir, 'ctx.json');
    // The models started 5 s ago; the train accelerates from 120 to 300 km/h over 10 s.
    let now = Date.now();
    const startMs = now - 5000;
    const feed = startContextFeed({
      file, startMs, periodMs: 60_000, now: () => now,
      carriers: [{ carrier: 'a', model: 'hsr-350', seed: 1 }, { carrier: 'b', model: 'lte-urban', seed: 2 }],
      speedKmh: [{ atS: 0, kmh: 120 }, { atS: 10, kmh: 300 }],
    });
    after(() => feed.stop());
    const { logger } = capture();
    const src = new EmulatorSource({ file, carriers: ['a', 'b'], logger, pollMs: 60_000 });
    let changes = 0;
    src.onChange(() => changes++);
    await src.start();
    after(() => src.stop());
    const written = feed.current() as ContextSnapshot;
    const snap = src.snapshot();
    assert.deepEqual(snap.radio, written.radio);
    assert.equal(snap.radio?.length, 2);
    const a = snap.radio![0]!;
    const expected = modelRadio('hsr-350', 1).samples[10]!; // 5 s in, 500 ms steps
    assert.equal(a.carrier, 'a');
    assert.equal(a.technology, 'lte');
    assert.equal(a.sinrDb, expected.sinrDb);
    assert.equal(a.cellId, expected.cellId);
    const v = snap.motion!.speedKmh!;
    assert.ok(v > 205 && v < 225, `speed ${v} km/h at ~5 s (210 expected)`);
    assert.equal(changes, 1);

    const composite = new CompositeSource([src], { logger });
    assert.equal(isHighSpeed(composite.snapshot()), true, '210 km/h >= 160');
    assert.equal(isHighSpeed(composite.snapshot(), 250), false);

    // 2 s later on the models' clock: the train has moved along its course (150 degrees,
    // south-east) by about 2 s x 230 km/h = 128 m, and the radio values are the next samples'.
    const p0 = snap.motion!;
    now += 2000;
    feed.write();
    await src.readNow();
    const p1 = src.snapshot().motion!;
    const dLatM = (p1.latitude! - p0.latitude!) * 111_320;
    const dLonM = (p1.longitude! - p0.longitude!) * 111_320 * Math.cos((p0.latitude! * Math.PI) / 180);
    const moved = Math.hypot(dLatM, dLonM);
    assert.ok(moved > 110 && moved < 140, `moved ${moved.toFixed(1)} m`);
    assert.ok(dLatM < 0 && dLonM > 0, 'south-east');
    assert.equal(src.snapshot().radio![0]!.sinrDb, modelRadio('hsr-350', 1).samples[14]!.sinrDb);
    assert.equal(changes, 2);

    // A slower train from the file: no longer high speed.
    writeFileSync(file, JSON.stringify({ ...(written as object), motion: { ...p1, speedKmh: 100, atMs: Date.now() } }));
    await src.readNow();
    assert.equal(src.snapshot().motion?.speedKmh, 100);
    assert.equal(isHighSpeed(composite.snapshot()), false, '100 km/h');
  });

  test('missing file, bad JSON, bad fields, unknown carriers: one log line each, last good values kept, no crash', async () => {
    const file = join(dir, 'bad.json');
    const { logger, msgs } = capture();
    const src = new EmulatorSource({ file, carriers: ['a'], logger });
    for (let i = 0; i < 3; i++) await src.readNow();
    assert.deepEqual(src.snapshot().radio, []);
    assert.equal(msgs.filter((m) => m.includes('cannot be read (ENOENT)')).length, 1);

    writeFileSync(file, JSON.stringify({ radio: [{ carrier: 'a', sinrDb: 12, atMs: 1 }, { carrier: 'zz', sinrDb: 3, atMs: 1 }] }));
    await src.readNow();
    assert.deepEqual(src.snapshot().radio, [{ carrier: 'a', sinrDb: 12, atMs: 1 }]);
    assert.ok(msgs.some((m) => m.includes('names carriers the edge does not have (zz)')));

    writeFileSync(file, '{"radio": [');
    for (let i = 0; i < 3; i++) await src.readNow();
    writeFileSync(file, JSON.stringify({ radio: [{ carrier: 'a', rsrpDbm: 'strong', atMs: 1 }] }));
    for (let i = 0; i < 3; i++) await src.readNow();
    const formatLines = msgs.filter((m) => m.includes('is not JSON') || m.includes('radio.0.rsrpDbm'));
    assert.equal(formatLines.length, 1, `one line for the format problem (it stays the same problem): ${formatLines.join(' | ')}`);
    assert.deepEqual(src.snapshot().radio, [{ carrier: 'a', sinrDb: 12, atMs: 1 }], 'last good values kept');
  });
});

describe('composite context', () => {
  const fixed = (name: string, snap: Partial<ContextSnapshot>): ContextSource => ({
    name, start: async () => {}, stop: async () => {}, snapshot: () => snap, onChange: () => () => {},
  });

  test('per carrier, the first source with a field wins and the others fill the gaps; stale values are left out', () => {
    const now = 100_000;
    const mm = { radio: [{ carrier: 'a', operatorName: 'Telekom.de', rsrpDbm: -97, atMs: now - 1000 }, { carrier: 'c', sinrDb: 2, atMs: now - 60_000 }] };
    const emu = { radio: [{ carrier: 'a', rsrpDbm: -80, sinrDb: 10, cellId: '01', atMs: now - 500 }, { carrier: 'b', sinrDb: 5, atMs: now }], motion: { speedKmh: 300, atMs: now } };
    const merged = mergeSnapshots([mm, emu], now, 15_000);
    assert.deepEqual(merged.radio, [
      { carrier: 'a', operatorName: 'Telekom.de', rsrpDbm: -97, sinrDb: 10, cellId: '01', atMs: now - 1000 },
      { carrier: 'b', sinrDb: 5, atMs: now },
    ]);
    assert.equal(merged.motion?.speedKmh, 300);
    assert.equal(isHighSpeed(merged), true);
    const stale = mergeSnapshots([{ motion: { speedKmh: 300, atMs: now - 20_000 } }], now, 15_000);
    assert.equal(stale.motion, undefined, 'a speed 20 s old does not count');
    assert.equal(isHighSpeed(stale), false);
    assert.equal(isHighSpeed({ radio: [], motion: { speedKmh: 160, atMs: now } }), true, '>= 160 km/h is high speed (S2-12)');
    assert.equal(isHighSpeed({ radio: [], motion: { speedKmh: 159.9, atMs: now } }), false);
  });

  test('a source that fails to start is logged and left out', async () => {
    const { logger, msgs } = capture();
    const broken: ContextSource = { ...fixed('broken', {}), start: () => Promise.reject(new Error('boom')) };
    const c = new CompositeSource([broken, fixed('ok', { radio: [{ carrier: 'a', sinrDb: 1, atMs: Date.now() }] })], { logger });
    await c.start();
    assert.equal(c.snapshot().radio.length, 1);
    assert.ok(msgs.includes('context source failed to start'));
  });
});
