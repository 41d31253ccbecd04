// Validation of telemetry batches as they arrive at the cloud. protobuf decoding only guarantees
// types: sizes, ranges and names are checked here before the fleet's history sees anything.
import { z } from 'zod';
import type { ReportRequest } from './types.js';

export const TELEMETRY_LIMITS = {
  reportsPerBatch: 256,
  pathsPerReport: 64,
  carriersPerReport: 64,
  nameChars: 64,
  bootIdChars: 64,
  cellIdChars: 32,
  textChars: 64,
} as const;

const L = TELEMETRY_LIMITS;
const EDGE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

const finite = z.number().refine(Number.isFinite, { message: 'must be a finite number' });
const nonNeg = finite.refine((n) => n >= 0, { message: 'must be >= 0' });
const optIn = (lo: number, hi: number) => finite.refine((n) => n >= lo && n <= hi, { message: `must be between ${lo} and ${hi}` }).optional();
const name = z.string().min(1, 'must not be empty').max(L.nameChars);
const text = z.string().max(L.textChars);

const pathSchema = z.object({
  carrier: name,
  state: z.enum(['PATH_STATE_UNSPECIFIED', 'PATH_STATE_PROBING', 'PATH_STATE_UP', 'PATH_STATE_DOWN']),
  transport: text,
  rttMs: optIn(0, 600_000),
  minRttMs: optIn(0, 600_000),
  s3DelayMs: optIn(-600_000, 600_000),
  cwndBytes: optIn(0, 1e12),
  congestionMode: z.enum(['CONGESTION_MODE_UNSPECIFIED', 'CONGESTION_MODE_WINDOW', 'CONGESTION_MODE_PACED']),
  lossRate: finite.refine((n) => n >= 0 && n <= 1, { message: 'must be between 0 and 1' }),
  goodputMbps: nonNeg,
  queueBytes: nonNeg,
  txBytes: nonNeg,
  rxBytes: nonNeg,
});

const carrierSchema = z.object({
  carrier: name,
  operatorName: text,
  mcc: z.string().regex(/^([0-9]{3})?$/, 'must be 3 digits or empty'),
  mnc: z.string().regex(/^([0-9]{2,3})?$/, 'must be 2-3 digits or empty'),
  technology: text,
  rsrpDbm: optIn(-156, -31),
  rsrqDb: optIn(-43, 20),
  sinrDb: optIn(-23, 40),
  cellId: z.string().max(L.cellIdChars),
  radioAtUnixMs: nonNeg,
});

const motionSchema = z.object({
  latitude: optIn(-90, 90),
  longitude: optIn(-180, 180),
  speedKmh: optIn(0, 1000),
  atUnixMs: nonNeg,
});

const reportSchema = z.object({
  seq: z.number().int().min(1, 'must be >= 1'),
  atUnixMs: nonNeg,
  sessionId: z.number().int().min(0).max(0xffffffff),
  paths: z.array(pathSchema).max(L.pathsPerReport),
  carriers: z.array(carrierSchema).max(L.carriersPerReport),
  motion: motionSchema.nullish(),
});

const requestSchema = z.object({
  edgeId: z.string().regex(EDGE_ID, 'must be 1-128 characters of [A-Za-z0-9._:-], starting with a letter or digit'),
  bootId: z.string().min(1, 'must not be empty').max(L.bootIdChars),
  reports: z.array(reportSchema).max(L.reportsPerBatch),
}).superRefine((r, ctx) => {
  for (let i = 1; i < r.reports.length; i++) {
    const prev = r.reports[i - 1];
    const cur = r.reports[i];
    if (prev && cur && cur.seq <= prev.seq) {
      ctx.addIssue({ code: 'custom', path: ['reports', i, 'seq'], message: `must be greater than the previous report's (${prev.seq})` });
      return;
    }
  }
});

export type Validation<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Checks a decoded ReportRequest; the value returned holds only known fields. */
export function validateReportRequest(input: unknown): Validation<ReportRequest> {
  const r = requestSchema.safeParse(input);
  if (r.success) return { ok: true, value: r.data as ReportRequest };
  const shown = r.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`);
  if (r.error.issues.length > 3) shown.push(`(${r.error.issues.length - 3} more)`);
  return { ok: false, reason: shown.join('; ') };
}
