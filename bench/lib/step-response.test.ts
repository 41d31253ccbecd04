// Rate steps (capacity-step scenario): validation names the field, the emulated trace carries each
// step's rate from its time on, and the step response is read off goodput bins correctly.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { steppedRateTrace } from './emulation.js';
import { steppedMeanMbps, validateScenario, ScenarioError } from './scenario.js';
import { stepResponses } from './step-response.js';

const scenario = (steps: unknown, extra: Record<string, unknown> = {}) => ({
  name: 'step',
  durationS: 20,
  carriers: [{ name: 'a', rateMbps: 8, rateSteps: steps, ...extra }, { name: 'b', rateMbps: 12 }],
  traffic: [{ kind: 'tcp', direction: 'down', flows: 1 }],
  systems: ['braid'],
});

function problems(raw: unknown): string[] {
  try {
    validateScenario(raw, '/tmp/step.json');
  } catch (err) {
    assert.ok(err instanceof ScenarioError);
    return err.problems;
  }
  assert.fail('expected the scenario to be refused');
}

describe('rate steps', () => {
  test('a valid step scenario loads with its time-weighted mean', () => {
    const s = validateScenario(scenario([{ atS: 10, rateMbps: 24 }]), '/tmp/step.json');
    assert.equal(s.resolvedCarriers[0]!.meanMbps.down, 16);
    assert.equal(steppedMeanMbps(8, [{ atS: 5, rateMbps: 24 }, { atS: 15, rateMbps: 8 }], 20), 16);
  });

  test('steps after the end, out of order, or on a trace carrier are refused by field', () => {
    assert.match(problems(scenario([{ atS: 20, rateMbps: 24 }])).join('\n'), /carriers\[0\]\.rateSteps\[0\]\.atS: 20 s is not before/);
    assert.match(problems(scenario([{ atS: 5, rateMbps: 24 }, { atS: 5, rateMbps: 4 }])).join('\n'), /rateSteps\[1\]\.atS: 5 s must come after/);
    const onModel = scenario([{ atS: 5, rateMbps: 24 }], { rateMbps: undefined, model: 'lte-urban' });
    assert.match(problems(onModel).join('\n'), /rateSteps: only a "rateMbps" carrier takes rate steps/);
    assert.match(problems(scenario([{ atS: 5, rateMbps: -1 }])).join('\n'), /rateSteps\[0\]\.rateMbps/);
  });

  test('the emulated trace carries each rate from its step on (shifted by the lead)', () => {
    const trace = steppedRateTrace(8, [{ atS: 2, rateMbps: 24 }], 3, 10);
    const mbpsIn = (fromMs: number, toMs: number) => (trace.filter((t) => t > fromMs && t <= toMs).length * 12000) / ((toMs - fromMs) * 1000);
    assert.ok(Math.abs(mbpsIn(0, 5000) - 8) < 0.2, `before the step: ${mbpsIn(0, 5000)}`);
    assert.ok(Math.abs(mbpsIn(5000, 10000) - 24) < 0.3, `after the step: ${mbpsIn(5000, 10000)}`);
    assert.equal(trace[trace.length - 1], 10000);
    for (let i = 1; i < trace.length; i++) assert.ok(trace[i]! >= trace[i - 1]!);
  });

  test('step response: a system that ramps to the new level over 700 ms', () => {
    const s = validateScenario(scenario([{ atS: 10, rateMbps: 24 }]), '/tmp/step.json');
    const binMs = 100;
    const bytes = (mbps: number) => (mbps * 1e6 * binMs) / 8000;
    // 18 Mbit/s (0.9 of 20) before; from 10 s ramps to 34 (0.94 of 36) at 10.7 s.
    const bins = Array.from({ length: 200 }, (_, i) => {
      if (i < 100) return bytes(18);
      if (i < 107) return bytes(18 + ((i - 99) * 16) / 8);
      return bytes(34);
    });
    const [r] = stepResponses(s, ['down'], bins, binMs);
    assert.ok(r);
    assert.equal(r.fromMbps, 20);
    assert.equal(r.toMbps, 36);
    assert.ok(Math.abs(r.settledMbps - 34) < 0.01);
    // 300 ms mean >= 32.4 (0.9 x 36) first at the bin ending 900 ms after the step.
    assert.equal(r.reach90CapacityMs, 900);
    // >= 30.6 (0.9 x 34 settled) at 800 ms.
    assert.equal(r.reach90SettledMs, 800);
  });

  test('a system that never gets there has null, not a number', () => {
    const s = validateScenario(scenario([{ atS: 10, rateMbps: 24 }]), '/tmp/step.json');
    const bins = Array.from({ length: 200 }, () => (10e6 * 100) / 8000);
    const [r] = stepResponses(s, ['down'], bins, 100);
    assert.equal(r!.reach90CapacityMs, null);
  });
});
