// The cloud's fleet intelligence without the network: history rings, the derivation rules
// (degradation by loss / RTT / SINR trend, S2-12 high speed, cell lessons shared between edges),
// and the state surviving a restart through the file-backed store.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Fleet } from '../src/fleet/fleet.js';
import { FleetHistory, type CarrierSample } from '../src/fleet/history.js';
import { FLEET_SOURCES, RecordingSink } from '../src/fleet/overlay.js';
import { Ring } from '../src/fleet/ring.js';
import { degradation, RULES } from '../src/fleet/rules.js';
import { FileStateStore, MemoryStateStore } from '../src/fleet/store.js';
import type { CarrierReport, PathReport, TelemetryReport } from '../src/uplink/types.js';

const dir = mkdtempSync(join(tmpdir(), 'braid-fleet-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const flush = () => new Promise((r) => setImmediate(r));

interface CarrierState { rtt?: number; loss?: number; sinr?: number; cell?: string; state?: PathReport['state'] }

function report(seq: number, carriers: Record<string, CarrierState>, speedKmh?: number): TelemetryReport {
  const paths: PathReport[] = [];
  const radio: CarrierReport[] = [];
  for (const [name, c] of Object.entries(carriers)) {
    paths.push({
      carrier: name, state: c.state ?? 'PATH_STATE_UP', transport: 'udp', rttMs: c.rtt ?? 50, congestionMode: 'CONGESTION_MODE_UNSPECIFIED',
      lossRate: c.loss ?? 0, goodputMbps: 10, queueBytes: 0, txBytes: 0, rxBytes: 0,
    });
    radio.push({ carrier: name, operatorName: 'Op', mcc: '208', mnc: name === 'a' ? '01' : '10', technology: 'lte', sinrDb: c.sinr ?? 15, cellId: c.cell ?? '', radioAtUnixMs: 0 });
  }
  return { seq, atUnixMs: 1_000_000 + seq * 100, sessionId: 1, paths, carriers: radio, motion: speedKmh === undefined ? undefined : { speedKmh, atUnixMs: 1_000_000 + seq * 100 } };
}

const samples = (xs: Partial<CarrierSample>[]): CarrierSample[] => xs.map((x, i) => ({ atMs: i * 100, state: 'up', ...x }));
const repeat = <T>(n: number, x: T): T[] => Array.from({ length: n }, () => x);

test('ring keeps the newest items up to its capacity', () => {
  const r = new Ring<number>(3);
  for (let i = 1; i <= 5; i++) r.push(i);
  assert.deepEqual(r.toArray(), [3, 4, 5]);
  assert.deepEqual(r.last(2), [4, 5]);
  assert.equal(r.newest(), 5);
  assert.equal(r.length, 3);
  assert.throws(() => new Ring(0), /positive integer/);
});

test('degradation: loss rising, RTT rising and SINR falling are each detected; steady or noisy-but-flat is not', () => {
  assert.equal(degradation(samples(repeat(10, { lossRate: 0.01, rttMs: 50, sinrDb: 12 }))), undefined);
  assert.match(degradation(samples([...repeat(7, { lossRate: 0.01 }), ...repeat(3, { lossRate: 0.08 })])) ?? '', /loss rising/);
  assert.equal(degradation(samples([...repeat(7, { lossRate: 0.01 }), ...repeat(3, { lossRate: 0.03 })])), undefined, 'below the 5% floor');
  assert.match(degradation(samples([...repeat(7, { rttMs: 50 }), ...repeat(3, { rttMs: 120 })])) ?? '', /RTT rising/);
  assert.equal(degradation(samples([...repeat(7, { rttMs: 10 }), ...repeat(3, { rttMs: 25 })])), undefined, 'x2.5 but only +15 ms');
  assert.match(degradation(samples([...repeat(7, { sinrDb: 12 }), ...repeat(3, { sinrDb: 2 })])) ?? '', /SINR falling/);
  assert.equal(degradation(samples([...repeat(7, { sinrDb: 25 }), ...repeat(3, { sinrDb: 15 })])), undefined, 'fell 10 dB but still good');
  assert.equal(degradation(samples([...repeat(7, { state: 'up' }), { state: 'down' }])), 'path went down', 'at the first down report');
  assert.equal(degradation(samples([...repeat(7, { state: 'up' }), ...repeat(2, { state: 'down' }), { state: 'up' }])), 'path went down', 'one answer is not recovery');
  assert.equal(degradation(samples([...repeat(7, { state: 'up' }), ...repeat(2, { state: 'down' }), ...repeat(3, { state: 'up' })])), undefined, 'back up for 3 reports');
  assert.equal(degradation(samples([...repeat(2, { state: 'probing' }), { state: 'down' }])), undefined, 'never up: nothing to compare with');
  // A blackout soon after another: the baseline window still holds the previous one's down reports.
  const again = [...repeat(7, { state: 'up' }), ...repeat(12, { state: 'down' }), ...repeat(3, { state: 'up' })];
  assert.equal(degradation(samples(again)), undefined, 'recovered between the blackouts');
  assert.equal(degradation(samples([...again, { state: 'down' }])), 'path went down', 'the next blackout, at its first down report');
  // A long blackout: the window of recent reports holds nothing but down; the ring remembers it was up.
  const last = RULES.recentSamples + RULES.baselineSamples;
  assert.equal(degradation(samples(repeat(last, { state: 'down' })), true), 'path went down', 'still down after a window of down reports');
  assert.equal(degradation(samples(repeat(RULES.recentSamples + RULES.minBaseline - 1, { lossRate: 0.5 }))), undefined, 'too little history');
});

test('a degrading carrier is demoted to secondary, and restored when it recovers', async () => {
  const sink = new RecordingSink();
  const fleet = new Fleet({ store: new MemoryStateStore(), sink, now: () => 5_000_000 });
  let seq = 0;
  for (let i = 0; i < 8; i++) fleet.ingest('edge-1', 'b', [report(++seq, { a: {}, b: {} })]);
  await flush();
  assert.equal(sink.get('edge-1', FLEET_SOURCES.degradation), undefined);
  for (let i = 0; i < 3; i++) fleet.ingest('edge-1', 'b', [report(++seq, { a: { loss: 0.15 }, b: {} })]);
  await flush();
  assert.deepEqual(sink.get('edge-1', FLEET_SOURCES.degradation), { carriers: { a: { tier: 'secondary' } } });
  for (let i = 0; i < 12; i++) fleet.ingest('edge-1', 'b', [report(++seq, { a: {}, b: {} })]);
  await flush();
  assert.equal(sink.get('edge-1', FLEET_SOURCES.degradation), undefined, 'withdrawn once the history is healthy again');
});

test('never demotes every carrier of an edge', async () => {
  const sink = new RecordingSink();
  const fleet = new Fleet({ store: new MemoryStateStore(), sink });
  let seq = 0;
  for (let i = 0; i < 8; i++) fleet.ingest('e', 'b', [report(++seq, { a: {}, b: {} })]);
  for (let i = 0; i < 3; i++) fleet.ingest('e', 'b', [report(++seq, { a: { loss: 0.2 }, b: { loss: 0.2 } })]);
  await flush();
  assert.equal(sink.get('e', FLEET_SOURCES.degradation), undefined);
});

test('S2-12: at >= 160 km/h real-time protection is raised; below, withdrawn', async () => {
  const sink = new RecordingSink();
  const fleet = new Fleet({ store: new MemoryStateStore(), sink });
  fleet.ingest('train', 'b', [report(1, { a: {} }, 150)]);
  await flush();
  assert.equal(sink.get('train', FLEET_SOURCES.speed), undefined);
  fleet.ingest('train', 'b', [report(2, { a: {} }, 160)]);
  await flush();
  assert.deepEqual(sink.get('train', FLEET_SOURCES.speed), { schedule: { beta: RULES.highSpeedBeta, retransmitF: RULES.highSpeedRetransmitF } });
  fleet.ingest('train', 'b', [report(3, { a: {} }, 300)]);
  fleet.ingest('train', 'b', [report(4, { a: {} }, 90)]);
  await flush();
  assert.equal(sink.get('train', FLEET_SOURCES.speed), undefined);
  assert.equal(sink.log.filter((l) => l.source === FLEET_SOURCES.speed).length, 2, 'set once, withdrawn once (no repeats)');
});

test('what one edge learned about a cell is offered to another edge on the same carrier and cell, not to one elsewhere', async () => {
  const sink = new RecordingSink();
  const fleet = new Fleet({ store: new MemoryStateStore(), sink });
  // Edges 2 and 3 report first: carrier a of edge-2 on cell 77 (same MCC/MNC as edge-1's a), edge-3 on cell 78.
  fleet.ingest('edge-2', 'b', [report(1, { a: { cell: '77' }, b: { cell: '5' } })]);
  fleet.ingest('edge-3', 'b', [report(1, { a: { cell: '78' }, b: { cell: '5' } })]);
  let seq = 0;
  for (let i = 0; i < 8; i++) fleet.ingest('edge-1', 'b', [report(++seq, { a: { cell: '77' }, b: { cell: '6' } })]);
  for (let i = 0; i < 3; i++) fleet.ingest('edge-1', 'b', [report(++seq, { a: { cell: '77', rtt: 200 }, b: { cell: '6' } })]);
  await flush();
  assert.deepEqual(sink.get('edge-1', FLEET_SOURCES.degradation), { carriers: { a: { tier: 'secondary' } } });
  assert.deepEqual(sink.get('edge-2', FLEET_SOURCES.cell), { carriers: { a: { tier: 'secondary' } } }, 'pushed to edge-2 at once');
  assert.equal(sink.get('edge-3', FLEET_SOURCES.cell), undefined, 'another cell');
  assert.equal(sink.get('edge-1', FLEET_SOURCES.cell), undefined, 'an edge is not told its own lesson');
  // An edge arriving on that cell later gets the lesson with its first report.
  fleet.ingest('edge-4', 'b', [report(1, { a: { cell: '77' }, b: { cell: '9' } })]);
  await flush();
  assert.deepEqual(sink.get('edge-4', FLEET_SOURCES.cell), { carriers: { a: { tier: 'secondary' } } });
  // Edge-2's carrier a moves to another cell: the lesson no longer applies to it.
  fleet.ingest('edge-2', 'b', [report(2, { a: { cell: '80' }, b: { cell: '5' } })]);
  await flush();
  assert.equal(sink.get('edge-2', FLEET_SOURCES.cell), undefined);
});

test('history: duplicates (re-sent after a reconnection) are skipped, gaps counted, a new boot id restarts the sequence', () => {
  const h = new FleetHistory(5);
  assert.deepEqual(h.ingest('e', 'boot-1', [report(1, { a: {} }), report(2, { a: {} })], 0), { ackedSeq: 2, stored: 2, duplicates: 0, gaps: 0 });
  assert.deepEqual(h.ingest('e', 'boot-1', [report(2, { a: {} }), report(5, { a: {} })], 0), { ackedSeq: 5, stored: 1, duplicates: 1, gaps: 2 });
  assert.deepEqual(h.ingest('e', 'boot-2', [report(1, { a: {} })], 0), { ackedSeq: 1, stored: 1, duplicates: 0, gaps: 0 });
  assert.equal(h.edges.get('e')?.carriers.get('a')?.length, 4, 'carrier history kept across the edge restart');
  for (let i = 2; i < 20; i++) h.ingest('e', 'boot-2', [report(i, { a: {} })], 0);
  assert.equal(h.edges.get('e')?.carriers.get('a')?.length, 5, 'bounded by samplesPerCarrier');
});

test('state survives a restart: history, acknowledged sequence and derived overlays come back from the file', async () => {
  const path = join(dir, 'state', 'fleet.json');
  const sink1 = new RecordingSink();
  const f1 = new Fleet({ store: new FileStateStore(path), sink: sink1, saveIntervalMs: 60_000 });
  await f1.start();
  let seq = 0;
  for (let i = 0; i < 8; i++) f1.ingest('edge-1', 'boot-1', [report(++seq, { a: {}, b: {} }, 250)]);
  for (let i = 0; i < 3; i++) f1.ingest('edge-1', 'boot-1', [report(++seq, { a: { loss: 0.2 }, b: {} }, 250)]);
  await f1.close();
  const doc = JSON.parse(readFileSync(path, 'utf8')) as { format: string };
  assert.equal(doc.format, 'braid.fleet-state.v1');

  const sink2 = new RecordingSink();
  const f2 = new Fleet({ store: new FileStateStore(path), sink: sink2 });
  await f2.start();
  assert.equal(f2.history.edges.get('edge-1')?.ackedSeq, 11);
  assert.equal(f2.history.edges.get('edge-1')?.carriers.get('a')?.length, 11);
  assert.deepEqual(f2.overlaysOf('edge-1')[FLEET_SOURCES.degradation], { carriers: { a: { tier: 'secondary' } } });
  // The edge re-sends what it had not seen acknowledged: nothing is stored twice.
  const r = f2.ingest('edge-1', 'boot-1', [report(10, { a: { loss: 0.2 }, b: {} }, 250), report(11, { a: { loss: 0.2 }, b: {} }, 250), report(12, { a: { loss: 0.2 }, b: {} }, 250)]);
  assert.deepEqual(r, { ackedSeq: 12, stored: 1, duplicates: 2, gaps: 0 });
  await flush();
  assert.equal(sink2.log.length, 0, 'unchanged overlays are not announced again after the restart');
  await f2.close();
});

test('a corrupt state file is reported with its reason and the cloud starts empty', async () => {
  const path = join(dir, 'corrupt.json');
  writeFileSync(path, '{"format":"something-else"}');
  await assert.rejects(new FileStateStore(path).load(), /unknown format "something-else"/);
  writeFileSync(path, '{not json');
  await assert.rejects(new FileStateStore(path).load(), /not valid JSON/);
  const f = new Fleet({ store: new FileStateStore(path), sink: new RecordingSink() });
  await f.start();
  assert.equal(f.history.edges.size, 0);
  await f.close();
});
