// Edge configuration of the S2-5 context sources (edge.yaml `context:`). Composed into
// config/schema.ts; every key is documented in docs/configuration.md and docs/context.md.
import type { z } from 'zod';
import { hostPort, intIn, listOf, oneOf, section, stringWhere } from '../config/fields.js';

export const CONTEXT_SOURCES = ['modemmanager', 'gpsd', 'emulator'] as const;
export type ContextSourceName = (typeof CONTEXT_SOURCES)[number];

export const contextSchema = section({
  sources: listOf(oneOf(CONTEXT_SOURCES), 'a list of context sources (modemmanager, gpsd, emulator), each at most once')
    .refine((l) => new Set(l).size === l.length)
    .default([]),
  staleMs: intIn(1000, 3_600_000).default(15_000),
  highSpeedKmh: intIn(1, 1000).default(160),
  gpsd: hostPort('host:port of gpsd (its JSON socket, usually 127.0.0.1:2947)', false).default('127.0.0.1:2947'),
  modemManager: section({
    pollMs: intIn(1000, 600_000).default(5000),
    command: stringWhere('the mmcli command (a name on PATH or a path)', (s) => s.length > 0 && !s.includes('\0')).default('mmcli'),
  }).prefault({}),
  emulator: section({
    file: stringWhere('a path to the JSON file the link emulator rewrites', (s) => s.length > 0 && !s.includes('\0')).optional(),
    pollMs: intIn(100, 60_000).default(1000),
  }).prefault({}),
}).superRefine((c, ctx) => {
  if (c.sources.includes('emulator') && c.emulator.file === undefined) {
    ctx.addIssue({ code: 'custom', path: ['emulator', 'file'], input: undefined, message: 'required when context.sources has "emulator": expected a path to the JSON file the link emulator rewrites' });
  }
}).prefault({});

export type ContextConfig = z.output<typeof contextSchema>;
