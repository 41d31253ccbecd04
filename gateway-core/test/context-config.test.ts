// edge.yaml `context:`: the sources and their settings, and the refusals a person sees.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { ConfigError, parseEdgeConfig } from '../src/config/index.js';
import { contextFromConfig } from '../src/context/from-config.js';

const base = { control: { cloud: 'c:1', tls: { ca: 'a', cert: 'b', key: 'c' } }, carriers: [{ name: 'a', interface: 'w0' }], interception: { clientSubnets: ['10.0.0.0/8'] } };

function refusal(context: unknown): string {
  try {
    parseEdgeConfig({ ...base, context }, 'edge.yaml');
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  assert.fail('accepted');
}

test('context config: bad values are refused with the key and the rule', () => {
  assert.equal(refusal({ sources: ['emulator'] }), 'edge.yaml: context.emulator.file: required when context.sources has "emulator": expected a path to the JSON file the link emulator rewrites');
  assert.equal(refusal({ sources: ['gpsd', 'gpsd'] }), 'edge.yaml: context.sources: expected a list of context sources (modemmanager, gpsd, emulator), each at most once, got a list of 2 items');
  assert.equal(refusal({ sources: ['gps'] }), 'edge.yaml: context.sources[0]: expected one of modemmanager|gpsd|emulator, got "gps"');
  assert.match(refusal({ gpsd: 'nohost' }), /^edge\.yaml: context\.gpsd: expected host:port of gpsd/);
  assert.match(refusal({ highSpeedKmh: 0 }), /^edge\.yaml: context\.highSpeedKmh: expected a number between 1 and 1000, got 0/);
});

test('context config: the sources are built in the configured order', async () => {
  const cfg = parseEdgeConfig({ ...base, context: { sources: ['emulator', 'modemmanager', 'gpsd'], emulator: { file: '/nonexistent/ctx.json' }, gpsd: '[::1]:2947' } });
  const c = contextFromConfig(cfg.context, cfg.carriers, pino({ level: 'silent' }));
  assert.deepEqual(c.sources.map((s) => s.name), ['emulator', 'modemmanager', 'gpsd']);
  assert.deepEqual(contextFromConfig(parseEdgeConfig(base).context, cfg.carriers, pino({ level: 'silent' })).sources, [], 'no sources by default');
});
