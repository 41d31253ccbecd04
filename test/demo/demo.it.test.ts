// The demo contract: `npm run demo -- --duration N --json` ends by itself and prints one JSON
// object with per-path bytes, goodput and transferOk, and the traffic really was split.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { listNamespaces } from '../harness/netns.js';
import { requireRoot } from '../harness/root.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

test('demo --duration 12 --json: one JSON object, every carrier used, transfers intact, nothing left behind', async (t) => {
  if (!requireRoot(t)) return;
  const before = new Set(await listNamespaces());
  const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', 'test/demo/main.ts', '--duration', '12', '--json'], {
    cwd: root, encoding: 'utf8', timeout: 120_000,
  });
  assert.equal(r.status, 0, `demo exited ${r.status}\n${r.stderr}\n${r.stdout}`);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `stdout is exactly one line:\n${r.stdout}`);
  const out = JSON.parse(lines[0]!) as {
    paths: { name: string; txBytes: number; rxBytes: number }[]; goodputMbps: number; goodputDownMbps: number; transferOk: boolean;
    durationS: number; offeredCapacityMbps: { down: number; up: number } | null;
  };
  t.diagnostic(`goodput ${out.goodputMbps} Mbit/s (down ${out.goodputDownMbps}); emulated carriers offered ` +
    `${out.offeredCapacityMbps?.down} Mbit/s down; ${out.paths.map((p) => `${p.name} rx ${p.rxBytes}`).join(', ')}`);
  assert.equal(out.transferOk, true, r.stdout);
  assert.deepEqual(out.paths.map((p) => p.name), ['lte-urban', 'lte-highway', '5g-nr']);
  // The split: every carrier carried part of the downloads. lte-highway has the longest base
  // delay of the three; the earliest-arrival scheduler gives it traffic only while the other two
  // have standing queues, and the demo's HTTP downloads rarely build them, so it often carries
  // only a few hundred kilobytes in 12 s (seen: 190-550 KB). Using such a carrier more is the
  // engine issue's work; here it must at least be in use.
  for (const p of out.paths) assert.ok(p.rxBytes > 100_000, `${p.name} carried ${p.rxBytes} bytes down`);
  // The merge: a real share of what the three emulated carriers offered during the run (their
  // synthetic traces vary: about 35-40 Mbit/s down in this window for seed 1). The demo's
  // traffic is a few sequential HTTP downloads at ~50-100 ms RTT, not a saturating bulk
  // transfer, and the machine is shared. Seen: 0.19-0.41 of the offered downlink on a machine
  // loaded with other work (load average 12-15 on 2 cores); 0.15 is a floor, not a target.
  assert.ok(out.offeredCapacityMbps !== null && out.offeredCapacityMbps.down > 0, 'the emulators reported their capacity');
  assert.ok(out.goodputDownMbps > 0.15 * out.offeredCapacityMbps.down,
    `down goodput ${out.goodputDownMbps} Mbit/s of ${out.offeredCapacityMbps.down} Mbit/s offered`);
  assert.ok(out.durationS >= 11 && out.durationS < 20, `ran ${out.durationS} s`);
  // The demo's namespaces are named after its pid (other tests may run their own meanwhile).
  const leftover = (await listNamespaces()).filter((n) => !before.has(n) && n.startsWith(`br${r.pid % 100000}-`));
  assert.deepEqual(leftover, []);
});
