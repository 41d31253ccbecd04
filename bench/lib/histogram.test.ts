// The gateways' reorder-delay and delay-spread histograms as the bench reports them (no root):
// percentiles as bucket upper bounds, both receiving sides summed, issue 4's verdict line, the
// table column, and result files written before the spread existed still valid.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bucketCounts as counts } from '../../gateway-core/test/bucket-counts.js';
import { renderAllTable } from './all-table.js';
import { NULL_RESULT, validateResult, type BenchResult } from './bench-result.js';
import { bucketPercentiles, histogramText, spreadVerdict, statusHistograms } from './histogram.js';


describe('bench histograms', () => {
  test('percentiles are the upper bounds of the buckets they fall in', () => {
    assert.deepEqual(bucketPercentiles([counts({ '0.5': 60, '10': 39, '65': 1 })]), { p50: 0.5, p99: 10 });
    assert.deepEqual(bucketPercentiles([counts({ '0.5': 40, '10': 58, '65': 2 })]), { p50: 10, p99: 65 });
    // Summed over histograms (edge and cloud sessions).
    assert.deepEqual(bucketPercentiles([counts({ '0.5': 40 }), counts({ '10': 58 }), counts({ '65': 2 })]), { p50: 10, p99: 65 });
    // The overflow bucket reads as the last bound (the value is at least that), never Infinity.
    assert.deepEqual(bucketPercentiles([counts({ overflow: 3 })]), { p50: 2000, p99: 2000 });
    assert.equal(bucketPercentiles([]), null);
    assert.equal(bucketPercentiles([counts({})]), null);
  });

  test('a histogram in words: the non-empty buckets, summed', () => {
    assert.equal(histogramText([counts({ '0.5': 7, '65': 2 }), counts({ '65': 1, overflow: 4 })]), '<=0.5: 7, <=65: 3, >2000: 4');
    assert.equal(histogramText([counts({})]), null);
  });

  test('histograms come from the edge status and every cloud session', () => {
    const d = counts({ '5': 1 });
    const s = counts({ '60': 2 });
    const edge = { reorder: { delayCounts: d, spreadCounts: s } };
    const cloud = { sessions: [{ reorder: { delayCounts: d } }, { reorder: null }, {}, { reorder: { delayCounts: d, spreadCounts: s } }] };
    assert.deepEqual(statusHistograms(edge, cloud, 'delayCounts'), [d, d, d]);
    assert.deepEqual(statusHistograms(edge, cloud, 'spreadCounts'), [s, s]);
    // Gateways that do not export the spread (older builds) give nothing, not an error.
    assert.deepEqual(statusHistograms({ reorder: { delayCounts: d } }, { sessions: [] }, 'spreadCounts'), []);
    assert.deepEqual(statusHistograms({}, {}, 'delayCounts'), []);
  });

  test('the verdict: reorder p99 against spread p99 + 5 ms', () => {
    assert.match(spreadVerdict({ p50: 1, p99: 60 }, { p50: 50, p99: 55 }) ?? '', /^reorder p99 60 ms vs spread p99 55 ms \+ 5 ms: met by 0 ms/);
    assert.match(spreadVerdict({ p50: 1, p99: 45 }, { p50: 50, p99: 55 }) ?? '', /: met by 15 ms/);
    assert.match(spreadVerdict({ p50: 1, p99: 300 }, { p50: 50, p99: 65 }) ?? '', /^reorder p99 300 ms vs spread p99 65 ms \+ 5 ms: not met by 230 ms/);
    assert.match(spreadVerdict({ p50: 0.5, p99: 2 }, { p50: 0.5, p99: 0.5 }) ?? '', /: met by 3\.5 ms/);
    assert.equal(spreadVerdict(null, { p50: 1, p99: 1 }), null);
    assert.equal(spreadVerdict({ p50: 1, p99: 1 }, null), null);
  });
});

describe('delaySpreadMs in results', () => {
  const base = (details: object): BenchResult => ({
    scenario: 's', durationS: 5, systems: { braid: { ...NULL_RESULT, goodputMbps: 1, reorderDelayMs: { p50: 0.5, p99: 75 } } }, date: 'd', command: 'c',
    host: { cpus: 2, cpuModel: 'x', kernel: 'k', node: 'v', loadAverageAtStart: [0] },
    carriers: [{ name: 'a', meanMbps: { up: 1, down: 1 } }], bestCarrier: 'a',
    details: { braid: { errors: [], notes: [], commands: [], path: 'p', leadS: 5, carrierBytes: [], ...details } },
  });

  test('is valid under details, null or absent; not among the contract figures', () => {
    assert.deepEqual(validateResult(base({ delaySpreadMs: { p50: 40, p99: 65 } })), []);
    assert.deepEqual(validateResult(base({ delaySpreadMs: null })), []);
    assert.deepEqual(validateResult(base({})), []);
    assert.ok(validateResult(base({ delaySpreadMs: { p50: -1, p99: 65 } })).length > 0);
    const r = base({});
    const extra = { ...r, systems: { braid: { ...r.systems.braid, delaySpreadMs: { p50: 1, p99: 1 } } } };
    assert.ok(validateResult(extra).some((x) => x.includes('delaySpreadMs')), 'the per-system figures stay the contract\'s');
  });

  test('the recorded results (written before the spread existed) still parse', () => {
    const dir = fileURLToPath(new URL('../results/all/', import.meta.url));
    let n = 0;
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
      assert.deepEqual(validateResult(JSON.parse(readFileSync(`${dir}${f}`, 'utf8'))), [], f);
      n++;
    }
    assert.ok(n > 0);
  });

  test('the bench:all table has a spread column beside the reorder delay', () => {
    const run = { date: '2026-11-23T04:00:00Z', totalS: 60, command: 'npm run bench:all', machine: 'm', resultsDir: 'r' };
    const md = renderAllTable([{ name: 's', result: base({ delaySpreadMs: { p50: 40, p99: 65 } }) }, { name: 'old', result: base({}) }], run);
    const lines = md.split('\n');
    const header = lines.find((l) => l.startsWith('| Scenario'))!;
    const cols = header.split('|').map((c) => c.trim());
    const at = cols.indexOf('Path delay spread p50 / p99 ms');
    assert.equal(at, cols.indexOf('Reorder delay p50 / p99 ms') + 1);
    const rows = lines.filter((l) => l.includes('| braid |'));
    assert.equal(rows[0]!.split('|').map((c) => c.trim())[at], '40 / 65');
    assert.equal(rows[1]!.split('|').map((c) => c.trim())[at], '–');
    // Every row has as many cells as the header.
    for (const l of lines.filter((x) => x.startsWith('| '))) assert.equal(l.split('|').length, header.split('|').length, l);
  });
});
