// S2-12 hookup: the high-speed state from the context, switched once per crossing, both ways,
// and off when the speed goes stale.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { CompositeSource } from '../src/context/composite.js';
import { HighSpeedWatch } from '../src/context/high-speed.js';
import type { ContextSnapshot, ContextSource } from '../src/context/types.js';

test('HighSpeedWatch: one switch per crossing of the threshold, off again when the speed is stale', () => {
  let now = 1_000_000;
  let motion: ContextSnapshot['motion'];
  const src: ContextSource = { name: 'gps', start: async () => {}, stop: async () => {}, onChange: () => () => {}, snapshot: () => (motion ? { motion } : {}) };
  const ctx = new CompositeSource([src], { logger: pino({ level: 'silent' }), staleMs: 15_000, now: () => now });
  const switches: [boolean, number | undefined][] = [];
  const w = new HighSpeedWatch(() => ctx.snapshot(), 160, (on, v) => switches.push([on, v]));
  w.check();
  assert.deepEqual(switches, [], 'no speed: stays off');
  for (const v of [100, 159, 160, 250, 300, 161]) {
    motion = { speedKmh: v, atMs: now };
    w.check();
  }
  assert.deepEqual(switches, [[true, 160]]);
  assert.equal(w.on, true);
  motion = { speedKmh: 120, atMs: now };
  w.check();
  assert.deepEqual(switches, [[true, 160], [false, 120]]);
  motion = { speedKmh: 300, atMs: now };
  w.check();
  now += 16_000; // gpsd died: the last fix is 16 s old
  w.check();
  assert.deepEqual(switches.slice(2), [[true, 300], [false, undefined]]);
});
