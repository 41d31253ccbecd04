// Walks a config schema by key path. Used to suggest the intended key for a misspelt one and, in
// the tests, to list every leaf key so docs/configuration.md cannot fall behind the code.
import { z } from 'zod';

/** Strips default/prefault/optional/nullable/pipe wrappers down to the schema that holds the shape. */
export function unwrapSchema(schema: z.ZodType): z.ZodType {
  let s: z.ZodType = schema;
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) {
      s = s.unwrap() as z.ZodType;
    } else if (s instanceof z.ZodPipe) {
      s = s.in as z.ZodType;
    } else {
      return s;
    }
  }
}

/** The keys an object at `path` (as in a zod issue path) accepts, or undefined if none is there. */
export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  let s = unwrapSchema(schema);
  for (const seg of path) {
    if (s instanceof z.ZodArray && typeof seg === 'number') s = unwrapSchema(s.element as z.ZodType);
    else if (s instanceof z.ZodObject && typeof seg === 'string' && seg in s.shape) s = unwrapSchema(s.shape[seg] as z.ZodType);
    else return undefined;
  }
  return s instanceof z.ZodObject ? Object.keys(s.shape) : undefined;
}

/**
 * Every leaf key as a dotted path; list items as "[]": "carriers[].metadata.mcc". A list of
 * scalars (e.g. interception.clientSubnets) is one leaf.
 */
export function leafPaths(schema: z.ZodType, prefix = ''): string[] {
  const s = unwrapSchema(schema);
  if (s instanceof z.ZodObject) {
    return Object.entries(s.shape as Record<string, z.ZodType>).flatMap(([k, v]) => leafPaths(v, prefix ? `${prefix}.${k}` : k));
  }
  if (s instanceof z.ZodArray) {
    const item = unwrapSchema(s.element as z.ZodType);
    if (item instanceof z.ZodObject) return leafPaths(item, `${prefix}[]`);
  }
  return [prefix];
}
