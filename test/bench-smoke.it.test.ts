// Bench smoke test: `npm run bench` end to end on a short scenario (5 s, two emulated carriers,
// braid and best-single), its result valid against the result schema and its numbers sane.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { validateResult, type BenchResult } from '../bench/lib/bench-result.js';
import { REPO_ROOT } from './harness/apps.js';
import { requireRoot } from './harness/root.js';

test('bench: a 5 s two-carrier scenario gives a valid, sane result for braid and best-single', { timeout: 180_000 }, (t) => {
  if (!requireRoot(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  try {
    const scenario = join(dir, 'smoke.json');
    const out = join(dir, 'result.json');
    writeFileSync(scenario, JSON.stringify({
      name: 'smoke',
      durationS: 5,
      carriers: [{ name: 'a', rateMbps: 20, delayMs: 10 }, { name: 'b', rateMbps: 10, delayMs: 30 }],
      traffic: [{ kind: 'tcp', direction: 'down', flows: 2 }],
      systems: ['braid', 'best-single'],
    }));
    const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', join(REPO_ROOT, 'bench', 'run.ts'),
      '--scenario', scenario, '--out', out], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 170_000 });
    assert.equal(r.status, 0, `bench exited ${r.status}:\n${r.stderr}`);
    const result = JSON.parse(readFileSync(out, 'utf8')) as BenchResult;
    assert.deepEqual(validateResult(result), [], 'result matches bench/schema/result.schema.json');
    assert.equal(result.scenario, 'smoke');
    assert.equal(result.durationS, 5);
    assert.equal(result.bestCarrier, 'a');
    for (const name of ['braid', 'best-single'] as const) {
      const s = result.systems[name];
      assert.ok(s, `${name} ran`);
      const why = `${name}: ${JSON.stringify(s)}`;
      assert.ok(s.efficiency !== null && s.efficiency > 0 && s.efficiency <= 1.05, why);
      assert.ok(s.goodputMbps !== null && s.goodputMbps > 0, why);
      // Two carriers of 20 + 10 Mbit/s: the emulator's capacity over the run, within rounding.
      assert.ok(s.capacityMbps !== null && Math.abs(s.capacityMbps - 30) < 1.5, why);
      assert.ok(s.maxGapMs !== null && s.maxGapMs >= 0, why);
      assert.ok(s.overheadPct !== null && s.overheadPct > -1, why);
      // Not rr traffic: no latency, no messages.
      assert.equal(s.latencyMs, null, why);
      assert.equal(s.lostMessages, null, why);
    }
    // Only braid has a reorder buffer: its delay is measured, best-single's is null.
    const rd = result.systems.braid!.reorderDelayMs;
    assert.ok(rd && rd.p50 >= 0 && rd.p99 >= rd.p50, JSON.stringify(rd));
    assert.equal(result.systems['best-single']!.reorderDelayMs, null);
    // best-single has no gateway processes; braid's are measured.
    assert.equal(result.systems['best-single']!.cpuPct, null);
    assert.ok((result.systems.braid!.cpuPct ?? 0) > 0);
    assert.ok((result.systems.braid!.rssMb ?? 0) > 10);
    // One carrier alone cannot beat its own rate (20 of 30 Mbit/s).
    assert.ok(result.systems['best-single']!.efficiency! < 0.7, JSON.stringify(result.systems['best-single']));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
