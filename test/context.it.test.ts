// S2-5 context in the running edge: context.sources [modemmanager, gpsd, emulator] where this
// machine has no mmcli and no gpsd listens in the edge's namespace, and the link emulator's
// context feed supplies the radio KPIs and the train's speed. The edge keeps running, logs each
// missing source once, shows the emulator's values in /status (context), and switches the S2-12
// high-speed state when the train crosses 160 km/h, both ways; its telemetry reports carry the
// context to the cloud (fleet state). Needs root (namespaces, TUN).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ContextSnapshot } from '@braid/gateway-core';
import { startContextFeed, type ContextFeed, type FeedCarrier } from './emulator/context-feed.js';
import { sleep } from './harness/apps.js';
import { startTunnelFixture, type TunnelFixture } from './harness/fixture.js';
import type { GatewayStatus } from './harness/gateways.js';
import { isRoot, requireRoot } from './harness/root.js';

/** Some array or object in `v` holds both `cell` and `sinr` among its own values. */
function hasSample(v: unknown, cell: string, sinr: number): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const values = Object.values(v as Record<string, unknown>);
  if (values.includes(cell) && values.includes(sinr)) return true;
  return values.some((x) => hasSample(x, cell, sinr));
}

/** Some object in `v` has speedKmh === kmh. */
function hasSpeed(v: unknown, kmh: number): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if ((v as { speedKmh?: unknown }).speedKmh === kmh) return true;
  return Object.values(v as Record<string, unknown>).some((x) => hasSpeed(x, kmh));
}

type EdgeStatusWithContext = GatewayStatus & { context: ContextSnapshot & { highSpeed: boolean } };

const CARRIERS: FeedCarrier[] = [
  { carrier: 'hsr-a', model: 'hsr-350', seed: 1, operatorName: 'China Mobile', mcc: '460', mnc: '00' },
  { carrier: 'urban-b', model: 'lte-urban', seed: 2, operatorName: 'China Unicom', mcc: '460', mnc: '01' },
];

describe('edge context sources (S2-5) and the high-speed switch (S2-12)', { skip: !isRoot() && process.env.CI !== 'true' ? 'needs root (network namespaces, TUN)' : false }, () => {
  let fx: TunnelFixture;
  let feed: ContextFeed | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'braid-context-feed-'));
  const file = join(dir, 'context.json');
  const fleetFile = join(dir, 'fleet.json');
  const startMs = Date.now();
  /** The feed writes only when told (periodMs is long), so what the edge shows can be compared exactly. */
  const writeFeed = (speedKmh: number): ContextFeed => {
    feed?.stop();
    feed = startContextFeed({ file, carriers: CARRIERS, speedKmh, startMs, periodMs: 3_600_000 });
    return feed;
  };

  before(async () => {
    fx = await startTunnelFixture({
      name: 'braid-context',
      carriers: [{ name: 'hsr-a', rateMbit: 20 }, { name: 'urban-b', rateMbit: 10 }],
      gateways: () => ({
        // The cloud keeps what the edges report in its fleet state (saved every 2 s).
        cloud: { fleet: { stateFile: fleetFile } },
        edge: {
          context: {
            sources: ['modemmanager', 'gpsd', 'emulator'],
            gpsd: '127.0.0.1:29999',
            emulator: { file, pollMs: 200 },
            modemManager: { pollMs: 1000 },
          },
        },
      }),
    });
  });

  after(async () => {
    feed?.stop();
    await fx?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('root is available', (t) => {
    requireRoot(t);
  });

  async function statusWhen(what: string, ok: (s: EdgeStatusWithContext) => boolean, timeoutMs = 5000): Promise<EdgeStatusWithContext> {
    const t0 = Date.now();
    let last: EdgeStatusWithContext | undefined;
    while (Date.now() - t0 < timeoutMs) {
      last = (await fx.gw.edgeStatus()) as EdgeStatusWithContext;
      if (ok(last)) return last;
      await sleep(100);
    }
    throw new Error(`edge status never showed ${what}; last context: ${JSON.stringify(last?.context)}`);
  }

  test('the emulator\'s radio KPIs and speed show in the edge status; high-speed mode follows the speed', async () => {
    const f = writeFeed(120);
    const written = f.current() as ContextSnapshot;
    const s1 = await statusWhen('the feed at 120 km/h', (s) => s.context?.motion?.speedKmh === 120);
    assert.deepEqual(s1.context.radio, written.radio, 'radio per carrier exactly as the feed wrote it');
    assert.deepEqual(s1.context.radio.map((r) => r.carrier), ['hsr-a', 'urban-b']);
    assert.equal(s1.context.highSpeed, false);
    assert.equal(s1.ready, true, 'the edge is up and carrying traffic with missing sources');

    writeFeed(300);
    const s2 = await statusWhen('high-speed mode at 300 km/h', (s) => s.context?.highSpeed === true);
    assert.equal(s2.context.motion?.speedKmh, 300);

    // The edge's telemetry reports carry the context up to the cloud: its saved fleet state has,
    // for each carrier, a sample with the serving cell (mcc-mnc-cellid) and the SINR the
    // emulator gave it, and the train's 300 km/h. Searched by value, whatever the layout of the
    // state file (objects or tuples).
    const expected = written.radio.map((r) => ({ cell: `${r.mcc}-${r.mnc}-${r.cellId}`, sinr: r.sinrDb }));
    const t0 = Date.now();
    let state: unknown;
    const found = (): boolean => expected.every((e) => hasSample(state, e.cell, e.sinr!)) && hasSpeed(state, 300);
    while (Date.now() - t0 < 10_000) {
      state = JSON.parse(await readFile(fleetFile, 'utf8').catch(() => 'null')) as unknown;
      if (found()) break;
      await sleep(250);
    }
    for (const e of expected) assert.ok(hasSample(state, e.cell, e.sinr!), `cloud fleet state has a sample with ${e.cell} and SINR ${e.sinr}: ${JSON.stringify(state).slice(0, 600)}`);
    assert.ok(hasSpeed(state, 300), 'cloud fleet state has the speed');

    writeFeed(100);
    await statusWhen('high-speed mode off at 100 km/h', (s) => s.context?.highSpeed === false && s.context.motion?.speedKmh === 100);

    const log = await readFile(fx.gw.logs.edge, 'utf8');
    const msgs = log.split('\n').filter((l) => l.startsWith('{')).map((l) => String((JSON.parse(l) as { msg?: string }).msg));
    assert.equal(msgs.filter((m) => m === 'high-speed mode on (S2-12)').length, 1, 'switched on once');
    assert.equal(msgs.filter((m) => m === 'high-speed mode off (S2-12)').length, 1, 'switched off once');
    // The session got each switch (Session.setHighSpeedMode logs what it applied).
    const sessionSwitches = log.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg?: string; on?: boolean })
      .filter((l) => l.msg === 'high-speed mode').map((l) => l.on);
    assert.deepEqual(sessionSwitches, [true, false]);
    // No modem here (no mmcli, or no ModemManager running) and nothing listens on 29999: one
    // line each, however many polls.
    const mm = msgs.filter((m) => m.startsWith('mmcli not found') || m.startsWith('mmcli -L --output-json failed'));
    assert.equal(mm.length, 1, msgs.filter((m) => m.includes('mmcli')).join('\n'));
    assert.equal(msgs.filter((m) => m.startsWith('gpsd at 127.0.0.1:29999 unreachable')).length, 1);
  });
});
