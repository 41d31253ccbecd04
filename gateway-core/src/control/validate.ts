// Validation of control-plane messages. protobuf decoding only guarantees types, not sizes or
// sense: a hostile (or buggy) edge can send 10k carriers or a megabyte of edge id in a message
// that is otherwise well formed. Everything the server glue hands to service logic, and
// everything the client hands to the data plane, passes through here first.
import { isIP } from 'node:net';
import { z } from 'zod';
import type { HelloReply, HelloRequest } from './types.js';

/** Bounds on a HelloRequest; generous for any real edge, small enough to make abuse cheap to refuse. */
export const HELLO_LIMITS = {
  edgeIdChars: 128,
  softwareVersionChars: 64,
  carriers: 64,
  carrierNameChars: 64,
  interfaceChars: 64,
  metadataEntries: 32,
  metadataKeyChars: 64,
  metadataValueChars: 256,
  ciphers: 16,
  cipherChars: 64,
} as const;

/** Largest control-plane message either side accepts, in bytes (gRPC max message length). */
export const MAX_CONTROL_MESSAGE_BYTES = 2 * 1024 * 1024;

const L = HELLO_LIMITS;
const EDGE_ID = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,${L.edgeIdChars - 1}}$`);

const carrierSchema = z.object({
  name: z.string().min(1).max(L.carrierNameChars),
  interface: z.string().max(L.interfaceChars),
  metadata: z.record(z.string().min(1).max(L.metadataKeyChars), z.string().max(L.metadataValueChars))
    .refine((m) => Object.keys(m).length <= L.metadataEntries, { message: `at most ${L.metadataEntries} entries` }),
});

const helloRequestSchema = z.object({
  edgeId: z.string().max(L.edgeIdChars).regex(EDGE_ID, 'must be 1-128 characters of [A-Za-z0-9._:-], starting with a letter or digit'),
  softwareVersion: z.string().max(L.softwareVersionChars),
  carriers: z.array(carrierSchema).max(L.carriers),
  protocolVersion: z.number().int().min(1, 'must be set').max(0xffffffff),
  ciphers: z.array(z.string().min(1).max(L.cipherChars)).min(1).max(L.ciphers),
}) satisfies z.ZodType<HelloRequest>;

const key32 = z.instanceof(Buffer).refine((b) => b.length === 32, { message: 'must be exactly 32 bytes' });

const helloReplySchema = z.object({
  sessionId: z.number().int().min(1, 'must not be 0').max(0xffffffff),
  cipher: z.string().min(1).max(L.cipherChars),
  edgeToCloudKey: key32,
  cloudToEdgeKey: key32,
  dataEndpoint: z.object({
    host: z.string().min(1).max(253),
    port: z.number().int().min(1).max(65535),
  }),
  tunnelAddress: z.string().refine((a) => isIP(a) !== 0, { message: 'must be an IP address' }),
  tunnelPrefixLen: z.number().int().min(0).max(128),
  tunnelMtu: z.number().int().min(576).max(65535),
  keepaliveMs: z.number().int().min(1).max(3_600_000),
  tcpRelay: z.boolean().optional(),
}).refine((r) => isIP(r.tunnelAddress) !== 4 || r.tunnelPrefixLen <= 32, {
  message: 'must be at most 32 for an IPv4 tunnel address', path: ['tunnelPrefixLen'],
}) satisfies z.ZodType<HelloReply>;

export type Validation<T> = { ok: true; value: T } | { ok: false; reason: string };

function describe(error: z.ZodError): string {
  // A few issues are enough to tell what is wrong; all of them could be 10k lines.
  const shown = error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`);
  if (error.issues.length > 3) shown.push(`(${error.issues.length - 3} more)`);
  return shown.join('; ');
}

function check<T>(schema: z.ZodType<T>, input: unknown): Validation<T> {
  const r = schema.safeParse(input);
  return r.success ? { ok: true, value: r.data } : { ok: false, reason: describe(r.error) };
}

/** Checks a decoded HelloRequest; the value returned is a fresh copy holding only known fields. */
export function validateHelloRequest(input: unknown): Validation<HelloRequest> {
  return check(helloRequestSchema, input);
}

/** Checks a HelloReply (from the cloud's handler before sending it, or as received by an edge). */
export function validateHelloReply(input: unknown): Validation<HelloReply> {
  return check(helloReplySchema, input);
}
