// The control loop, measured on real namespaces: carrier lte-b's link emulator blacks out at
// scheduled times (its spec's outages); for each blackout we time
//   - the data plane's in-band reaction: the edge declares the path down (its /status), which
//     needs no cloud at all;
//   - the slow loop: the edge's telemetry report reaches the cloud, whose fleet derives the
//     `fleet.degradation` overlay demoting lte-b (the cloud's log line, with its timestamp);
//   - the end of the loop: the cloud's policy store puts the overlay into a new policy version,
//     PolicyService pushes it and the edge applies it (the edge's policy.applied event naming
//     the fleet.degradation overlay).
// p50/p99 are printed (with as few events as a test can afford, p99 is the largest value). A
// blackout that starts while the previous demotion is still in force is listed, not timed.
// Functional bounds only: the path is declared down within the 4 s blackout and the overlay
// derived within 5 s of its start. A path carrying traffic is declared down after pathDeadMs
// (300 ms); one the scheduler leaves idle at that moment only after three unanswered keepalives
// (about 3 s), which is why the blackouts last 4 s. The edge's control connections start on lte-b
// and must leave it when it goes down in-band (CarrierRelay.carrierDown): each overlay is then
// derived within 2 s of the in-band path down, not after the blackout.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { iperfUdp, startIperfServer } from './harness/apps.js';
import { startTunnelFixture, type TunnelFixture } from './harness/fixture.js';
import { requireRoot } from './harness/root.js';
import { isRoot } from './harness/root.js';

const OUTAGE_AT_S = [22, 31, 40, 49];
const OUTAGE_FOR_S = 4;
const link = { rateMbps: 20, delayMs: 15 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

interface LogLine { time: number; msg?: string; source?: string; edgeId?: string; reasons?: string[]; carrier?: string }

describe('control loop: carrier degradation -> cloud overlay -> edge policy', { timeout: 150_000 }, () => {
  let fx: TunnelFixture | undefined;
  let policyDir = '';

  before(async () => {
    if (!isRoot()) return;
    policyDir = await mkdtemp(join(tmpdir(), 'braid-control-loop-'));
    const policyFile = join(policyDir, 'policy.json');
    await writeFile(policyFile, JSON.stringify({ carriers: { 'lte-a': { tier: 'secondary' } } }));
    fx = await startTunnelFixture({
      name: 'braid-control-loop',
      // lte-b comes first, so the edge's control relay prefers it: the telemetry stream starts on
      // the carrier that blacks out, and its path-down report must not wait out the blackout on a
      // dead TCP connection (CarrierRelay.carrierDown moves it; without that, the first demotion
      // was derived only after the blackout, 5.4 s in).
      carriers: [
        {
          name: 'lte-b',
          emulate: {
            up: { ...link, outages: OUTAGE_AT_S.map((atS) => ({ atS, forS: OUTAGE_FOR_S })) },
            down: { ...link, outages: OUTAGE_AT_S.map((atS) => ({ atS, forS: OUTAGE_FOR_S })) },
          },
        },
        { name: 'lte-a', emulate: { up: link, down: link } },
      ],
      // A steady UDP download through the tunnel keeps lte-b active while it is primary (lte-a is
      // secondary by policy, so it takes only what lte-b cannot carry): an active path is suspect a
      // third of its dead time after an answer is overdue and down after pathDeadMs; an idle one
      // only after three unanswered keepalives. A rate-limited curl download was not steady: the
      // relay filled its window at the carriers' full rate, then nothing came for 1-2 s while curl
      // drained it, so lte-b was sometimes idle when it blacked out, declared down 2-3 s in, and its
      // report then came after the blackout. The fleet's demotion makes lte-b secondary too;
      // withdrawn, lte-b is primary again.
      // Reports every second when stable, so the overlay is withdrawn between blackouts.
      gateways: () => ({ cloud: { policy: { file: policyFile } }, edge: { uplink: { stableIntervalMs: 1000 } } }),
    });
  });

  after(async () => {
    await fx?.stop();
    if (policyDir) await rm(policyDir, { recursive: true, force: true });
  });

  test('each blackout: path down in-band, demotion overlay derived by the cloud; p50/p99 reported', async (t) => {
    if (!requireRoot(t) || !fx) return;
    const { topo, gw } = fx;
    const iperf = await startIperfServer(topo);
    const stopDownload = new AbortController();
    t.after(async () => {
      stopDownload.abort();
      await iperf.stop();
    });
    // The emulator's clock: outages count from its start.
    const probeAt = Date.now();
    const st = await topo.emulatorStats(0); // lte-b's emulator
    const emuStart = (probeAt + Date.now()) / 2 - st.t * 1000;
    const events = OUTAGE_AT_S.map((s) => emuStart + s * 1000).filter((at) => at > Date.now() + 500);
    assert.ok(events.length >= 3, `the gateways came up too late: only ${events.length} blackouts left to measure`);

    const end = (events[events.length - 1] ?? 0) + OUTAGE_FOR_S * 1000 + 3000;
    const download = iperfUdp(topo, { reverse: true, rateMbit: 4, seconds: Math.ceil((end - Date.now()) / 1000) + 2, signal: stopDownload.signal }).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
    // In-band: poll the edge's path state.
    const downAt: number[] = [];
    const seen: Record<string, number> = {};
    let wasDown = false;
    while (Date.now() < end) {
      const s = await gw.edgeStatus().catch(() => undefined);
      const state = s ? (s.paths.find((p) => p.name === 'lte-b')?.state ?? `no lte-b in ${s.paths.map((p) => p.name).join(',')}`) : 'no status';
      seen[state] = (seen[state] ?? 0) + 1;
      const down = state === 'down';
      if (down && !wasDown) downAt.push(Date.now());
      wasDown = down;
      await sleep(25);
    }
    await sleep(1000);
    const dl = await download;
    assert.ok(!(dl instanceof Error) && dl.mbps > 2, `the UDP download that keeps lte-b active ran: ${dl instanceof Error ? dl.message : `${dl.mbps.toFixed(2)} Mbit/s`}`);

    const readLog = async (file: string) => (await readFile(file, 'utf8')).split('\n').flatMap((l): LogLine[] => {
      try {
        return [JSON.parse(l) as LogLine];
      } catch {
        return [];
      }
    });
    const cloudLog = await readLog(gw.logs.cloud);
    const edgeLog = await readLog(gw.logs.edge);
    const demotesB = (l: LogLine) => l.msg === 'fleet overlay derived' && (l.reasons ?? []).some((r) => r.startsWith('lte-b'));
    const derived = cloudLog.filter((l) => l.source === 'fleet.degradation' && demotesB(l));
    // The demotion may still be in force from the previous blackout (lte-b's reports since then not
    // yet healthy for 3 in a row): then the edge already runs with it and nothing new is derived.
    const degradationLines = cloudLog.filter((l) => l.source === 'fleet.degradation' && (l.msg === 'fleet overlay derived' || l.msg === 'fleet overlay withdrawn'));
    const demotedAt = (at: number) => {
      const last = degradationLines.filter((l) => l.time < at).pop();
      return last !== undefined && demotesB(last);
    };
    const edgeEvents = await topo.exec(topo.ns.edge, ['curl', '-sS', '--max-time', '2', 'http://127.0.0.1:9464/events'], { allowFailure: true });
    const applied = ((): { time: number; attributes: Record<string, unknown> }[] => {
      try {
        const body = JSON.parse(edgeEvents.stdout) as { events?: { kind: string; time: number; attributes: Record<string, unknown> }[] } | { kind: string; time: number; attributes: Record<string, unknown> }[];
        const list = Array.isArray(body) ? body : (body.events ?? []);
        return list.filter((e) => e.kind === 'policy.applied' && String(e.attributes['braid.policy.sources'] ?? '').includes('fleet.degradation'));
      } catch {
        return [];
      }
    })();

    const rows: { inbandMs: number | undefined; derivedMs: number | undefined; reason: string | undefined; appliedMs: number | undefined; alreadyDemoted: boolean }[] = [];
    for (const [k, at] of events.entries()) {
      const next = events[k + 1] ?? Infinity;
      const d = downAt.find((x) => x >= at && x < next);
      const o = derived.find((l) => l.time >= at && l.time < next);
      const a = o ? applied.find((e) => e.time >= o.time && e.time < next) : undefined;
      const already = demotedAt(at);
      rows.push({
        inbandMs: d === undefined ? undefined : d - at, derivedMs: o && !already ? o.time - at : undefined, reason: o?.reasons?.join('; '),
        appliedMs: a && !already ? a.time - at : undefined, alreadyDemoted: already,
      });
    }
    const col = (f: (r: (typeof rows)[number]) => number | undefined) => rows.map(f).filter((x): x is number => x !== undefined);
    const summary = (xs: number[]) => (xs.length ? `p50 ${percentile(xs, 50).toFixed(0)} ms, p99 ${percentile(xs, 99).toFixed(0)} ms (n=${xs.length})` : 'not measured');
    const out = {
      blackouts: rows.length,
      inBandPathDown: summary(col((r) => r.inbandMs)),
      cloudOverlayDerived: summary(col((r) => r.derivedMs)),
      edgeRunningNewPolicy: summary(col((r) => r.appliedMs)),
      // The control plane's own share: from the edge declaring the path down to the edge running the policy.
      pathDownToPolicyApplied: summary(col((r) => (r.appliedMs !== undefined && r.inbandMs !== undefined ? r.appliedMs - r.inbandMs : undefined))),
      rows,
      statesPolled: seen,
    };
    t.diagnostic(JSON.stringify(out));
    console.log(`# control loop: ${JSON.stringify(out)}`);
    const inband = col((r) => r.inbandMs);
    assert.equal(inband.length, rows.length, `lte-b declared down in ${inband.length} of ${rows.length} blackouts: ${JSON.stringify(rows)}`);
    for (const ms of inband) assert.ok(ms < OUTAGE_FOR_S * 1000, `in-band reaction ${ms} ms`);
    // Each blackout ends with the edge running a policy that demotes lte-b: derived and applied
    // for it, or still in force from the previous one.
    for (const r of rows) {
      if (r.alreadyDemoted) continue;
      assert.ok(r.derivedMs !== undefined && r.derivedMs < 5000, `demotion derived: ${JSON.stringify(rows)}`);
      assert.ok(r.appliedMs !== undefined && r.appliedMs < 6000, `policy applied on the edge: ${JSON.stringify(rows)}`);
    }
    // The report saying lte-b is down travels over a live carrier: the control connections that ran
    // over lte-b were closed when it went down in-band and re-made over lte-a.
    const firstDown = downAt[0] ?? Infinity;
    const moved = edgeLog.find((l) => l.msg === 'control connections closed: their carrier is down' && l.carrier === 'lte-b');
    const remade = edgeLog.find((l) => l.time > (moved?.time ?? Infinity) && l.carrier === 'lte-a' && (l.msg ?? '').startsWith('control connection to'));
    assert.ok(moved && remade && remade.time - firstDown < 2000,
      `control connections over lte-b moved to lte-a within 2 s of its first in-band down (${firstDown}): closed ${moved?.time}, re-made ${remade?.time}`);
    // Each demotion follows the in-band down within 2 s: the first blackout's report had to change
    // carrier (it came 3.7 s after the in-band down when the report waited out the blackout), and a
    // later blackout's must not wait for the fleet rule to see enough up reports since the previous
    // one (it came 4.8 s after, from "RTT rising" once the blackout was over, before the rule looked
    // for an up report anywhere in the carrier's history rather than only in its baseline window).
    for (const r of rows) {
      if (r.alreadyDemoted || r.derivedMs === undefined || r.inbandMs === undefined) continue;
      assert.ok(r.derivedMs - r.inbandMs < 2000, `demotion derived ${r.derivedMs - r.inbandMs} ms after the in-band path down: ${JSON.stringify(rows)}`);
    }
    assert.ok(col((r) => r.appliedMs).length >= 2, `too few blackouts timed end to end: ${JSON.stringify(rows)}`);
  });
});
