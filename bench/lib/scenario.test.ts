// Scenario validation (no root): errors name the field, the file or the value at fault; the
// shipped scenarios load; the JSON schemas in bench/schema match their zod sources.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SCHEMA_FILES, schemaTexts } from '../schema/generate.js';
import { NULL_RESULT, validateResult } from './bench-result.js';
import { carrierSpecs, modelCatalog } from './emulation.js';
import { ScenarioError, bestCarrier, loadScenario, parseTrace, traceMeanMbps, validateScenario } from './scenario.js';
import { maxGapMs, percentile } from './stats.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-scenario-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const base = () => ({
  name: 't',
  durationS: 10,
  carriers: [{ name: 'a', rateMbps: 10 }, { name: 'b', rateMbps: 20, delayMs: 40 }],
  traffic: [{ kind: 'tcp', direction: 'down', flows: 2 }],
  systems: ['braid', 'best-single'],
});

/** The ScenarioError's problems for `raw` (fails the test when it validates). */
function problems(raw: unknown, file = join(dir, 's.json')): string[] {
  try {
    validateScenario(raw, file, modelCatalog());
  } catch (err) {
    assert.ok(err instanceof ScenarioError, `expected a ScenarioError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('scenario was accepted');
}

function hasProblem(list: string[], ...parts: string[]): void {
  assert.ok(list.some((p) => parts.every((x) => p.includes(x))), `no problem mentioning ${parts.join(' + ')} in:\n${list.join('\n')}`);
}

describe('scenario validation', () => {
  test('a valid scenario resolves, with defaults and mean capacities', () => {
    const s = validateScenario(base(), join(dir, 's.json'), modelCatalog());
    assert.equal(s.resolvedCarriers.length, 2);
    assert.equal(bestCarrier(s).name, 'b');
    const rr = validateScenario({ ...base(), traffic: [{ kind: 'rr' }] }, join(dir, 's.json'));
    assert.deepEqual(rr.traffic[0], { kind: 'rr', sizeB: 100, rateHz: 50 });
  });

  test('unknown fields are named, at any depth', () => {
    hasProblem(problems({ ...base(), colour: 'red' }), '(top level)', '"colour"');
    hasProblem(problems({ ...base(), carriers: [{ name: 'a', rateMbit: 10 }] }), 'carriers[0]', '"rateMbit"');
    hasProblem(problems({ ...base(), traffic: [{ kind: 'tcp', flow: 2 }] }), 'traffic[0]', '"flow"');
    hasProblem(problems({ ...base(), carriers: [{ name: 'a', rateMbps: 5, outages: [{ atS: 1, forS: 1, why: 'x' }] }] }),
      'carriers[0].outages[0]', '"why"');
  });

  test('impossible values are named', () => {
    hasProblem(problems({ ...base(), durationS: -5 }), 'durationS');
    hasProblem(problems({ ...base(), carriers: [{ name: 'a', rateMbps: 0 }] }), 'carriers[0].rateMbps');
    hasProblem(problems({ ...base(), carriers: [{ name: 'a', rateMbps: 5, lossPct: 100 }] }), 'carriers[0].lossPct');
    hasProblem(problems({ ...base(), carriers: [{ name: 'a', rateMbps: 5, delayMs: -1 }] }), 'carriers[0].delayMs');
    hasProblem(problems({ ...base(), traffic: [{ kind: 'tcp', flows: 0 }] }), 'traffic[0].flows');
    hasProblem(problems({ ...base(), traffic: [{ kind: 'udp' }] }), 'traffic[0].rateMbps');
    hasProblem(problems({ ...base(), traffic: [{ kind: 'quic' }] }), 'traffic[0].kind');
    hasProblem(problems({ ...base(), systems: ['braid', 'wireguard'] }), 'systems[1]');
    hasProblem(problems({ ...base(), systems: ['braid', 'braid'] }), 'systems[1]', 'twice');
    hasProblem(problems({ ...base(), carriers: [{ name: 'a', rateMbps: 5, outages: [{ atS: 8, forS: 5 }] }] }),
      'carriers[0].outages[0]', 'durationS');
    hasProblem(problems({ ...base(), carriers: [{ name: 'a', rateMbps: 5 }, { name: 'a', rateMbps: 6 }] }), 'carriers[1].name', '"a"');
    hasProblem(problems({ ...base(), carriers: [{ name: 'a' }] }), 'carriers[0]', 'exactly one');
    hasProblem(problems({ ...base(), carriers: [{ name: 'a', rateMbps: 5, model: 'lte-urban' }] }), 'carriers[0]', 'exactly one');
    hasProblem(problems({ ...base(), carriers: [{ model: 'lte-moon' }] }), 'carriers[0].model', '"lte-moon"', 'lte-urban');
    hasProblem(problems({ ...base(), systems: ['mptcp'], traffic: [{ kind: 'udp', rateMbps: 1 }] }), 'traffic[0]', 'mptcp');
  });

  test('missing and malformed trace files are named with their resolved path', () => {
    writeFileSync(join(dir, 'ok.up'), '5\n10\n');
    const missing = problems({ ...base(), carriers: [{ name: 'a', downTrace: 'nope.down', upTrace: 'ok.up' }] });
    hasProblem(missing, 'carriers[0].downTrace', join(dir, 'nope.down'), 'not found');
    hasProblem(problems({ ...base(), carriers: [{ name: 'a', upTrace: 'ok.up' }] }), 'carriers[0]', 'downTrace');
    writeFileSync(join(dir, 'bad.down'), '5\nten\n');
    hasProblem(problems({ ...base(), carriers: [{ name: 'a', downTrace: 'bad.down', upTrace: 'ok.up' }] }),
      'carriers[0].downTrace', 'line 2', 'ten');
  });

  test('relative trace paths resolve against the scenario file', () => {
    const sub = join(dir, 'sub');
    rmSync(sub, { recursive: true, force: true });
    writeFileSync(join(dir, 'lte.down'), `${Array.from({ length: 10 }, (_, i) => i + 1).join('\n')}\n`);
    writeFileSync(join(dir, 'lte.up'), '1\n10\n');
    const file = join(dir, 'rel.json');
    writeFileSync(file, JSON.stringify({ ...base(), carriers: [{ name: 'a', downTrace: 'lte.down', upTrace: './lte.up' }] }));
    const s = loadScenario(file, modelCatalog());
    // 10 packets of 1500 B in 10 ms = 12 Mbit/s
    assert.equal(Math.round(s.resolvedCarriers[0]!.meanMbps.down), 12);
    assert.equal(s.resolvedCarriers[0]!.down?.traceFrom, join(dir, 'lte.down'));
  });

  test('a file that is missing or not JSON is an error that says so', () => {
    assert.throws(() => loadScenario(join(dir, 'none.json')), /scenario file not found/);
    writeFileSync(join(dir, 'broken.json'), '{ "name": ');
    assert.throws(() => loadScenario(join(dir, 'broken.json')), /not valid JSON/);
  });

  test('every shipped scenario loads and maps onto emulator specs', () => {
    const scenarios = fileURLToPath(new URL('../scenarios/', import.meta.url));
    for (const f of readdirSync(scenarios).filter((x) => x.endsWith('.json'))) {
      if (f.startsWith('optional-')) continue; // may reference ../../../shared/traces
      const s = loadScenario(join(scenarios, f), modelCatalog());
      const specs = carrierSpecs(s);
      assert.equal(specs.length, s.carriers.length, f);
      assert.ok(s.durationS <= 30, `${f}: keep bench:all short`);
    }
  });
});

describe('bench helpers', () => {
  test('traces, percentiles, gaps', () => {
    assert.deepEqual(parseTrace('0\n1\n1\n\n4\n', 't'), [0, 1, 1, 4]);
    assert.throws(() => parseTrace('3\n2\n', 't'), /goes back in time/);
    assert.equal(traceMeanMbps([1, 1, 1]), 36);
    assert.equal(percentile([1, 2, 3, 4, 5], 50), 3);
    assert.equal(percentile([10, 20], 99), 19.9);
    assert.equal(maxGapMs([0, 0, 5, 0, 0, 0, 3, 0], 100), 300);
    assert.equal(maxGapMs([0, 0], 100), 200);
  });

  test('the JSON schemas in bench/schema are the generated ones', () => {
    const t = schemaTexts();
    assert.equal(readFileSync(SCHEMA_FILES.result, 'utf8'), t.result, 'run: node --import tsx bench/schema/generate.ts');
    assert.equal(readFileSync(SCHEMA_FILES.scenario, 'utf8'), t.scenario, 'run: node --import tsx bench/schema/generate.ts');
  });

  test('the result validator names what is wrong', () => {
    const ok = {
      scenario: 's', durationS: 5, systems: { braid: { ...NULL_RESULT, goodputMbps: 1 } }, date: 'd', command: 'c',
      host: { cpus: 2, cpuModel: 'x', kernel: 'k', node: 'v', loadAverageAtStart: [0] },
      carriers: [{ name: 'a', meanMbps: { up: 1, down: 1 } }], bestCarrier: 'a', details: {},
    };
    assert.deepEqual(validateResult(ok), []);
    const bad = { ...ok, systems: { braid: { ...NULL_RESULT, goodputMbps: -1, extra: 1 } } };
    const p = validateResult(bad);
    assert.ok(p.some((x) => x.includes('systems.braid.goodputMbps')), p.join('\n'));
    assert.ok(p.some((x) => x.includes('extra')), p.join('\n'));
  });
});
