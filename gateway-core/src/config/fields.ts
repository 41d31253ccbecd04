// Building blocks for the config schemas. Every leaf carries one sentence of what it expects, and
// every failure of that leaf (wrong type, out of range, bad format) reads
// "expected <that sentence>, got <the value>", so a person sees the rule, not zod's internals.
import { z } from 'zod';
import { NetParseError, isValidHost, isValidIfname, parseCidr, parseHostPort } from './net.js';

/** How a value from YAML is shown after "got": strings quoted, containers named, not dumped. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'an empty value';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : `a list of ${v.length} item${v.length === 1 ? '' : 's'}`;
  if (v instanceof Date) return `a date (${v.toISOString().slice(0, 10)}; quote it to make it a string)`;
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

/** The error map shared by a leaf and all of its checks. A missing value says "required". */
export function expecting(what: string): z.core.$ZodErrorMap {
  return (iss) => (iss.input === undefined ? `required: expected ${what}` : `expected ${what}, got ${describeValue(iss.input)}`);
}

/** A strict mapping: unknown keys are errors (the loader adds "did you mean"). */
export function section<S extends z.core.$ZodLooseShape>(shape: S) {
  // Only the object's own type error is worded here; an unrecognized_keys issue is rewritten by
  // errors.ts, which can see the known keys.
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'invalid_type' ? expecting('a mapping of keys to values')(iss) : undefined),
  });
}

/** A whole number in [min, max]; `what` overrides the wording when the range alone says too little. */
/** A number (fractions allowed) in [min, max]. */
export function numIn(min: number, max: number, what = `a number between ${min} and ${max}`) {
  return z.number({ error: expecting(what) }).min(min).max(max);
}

export function intIn(min: number, max: number, what = `a number between ${min} and ${max}`) {
  return z.int({
    error: (iss) => {
      // A fraction fails the int type check: say "whole" so 2.5 does not look like a range problem.
      if (typeof iss.input === 'number' && !Number.isInteger(iss.input)) return `expected a whole number (${what}), got ${iss.input}`;
      return expecting(what)(iss);
    },
  }).min(min).max(max);
}

/** A string that `test` accepts. */
export function stringWhere(what: string, test: (s: string) => boolean) {
  return z.string({ error: expecting(what) }).refine(test);
}

/**
 * A string that `parse` accepts; a NetParseError's reason (e.g. "host bits set, did you mean
 * 10.0.0.0/24?") is appended so the fix is in the message.
 */
export function stringParsedBy(what: string, parse: (s: string) => void) {
  return z.string({ error: expecting(what) }).superRefine((s, ctx) => {
    try {
      parse(s);
    } catch (e) {
      const reason = e instanceof NetParseError ? e.reason : e instanceof Error ? e.message : String(e);
      ctx.addIssue({ code: 'custom', input: s, message: `expected ${what}, got ${describeValue(s)}: ${reason}` });
    }
  });
}

export function bool() {
  return z.boolean({ error: expecting('true or false') });
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: expecting(`one of ${values.join('|')}`) });
}

export function listOf<T extends z.ZodType>(item: T, what: string) {
  return z.array(item, { error: expecting(what) });
}

// ---- network values -------------------------------------------------------------------------

export const IFNAME_RULE = "a network interface name (1-15 chars, no '/', ':' or spaces)";

export function ifname() {
  return stringWhere(IFNAME_RULE, isValidIfname);
}

export function ipv4Cidr(extra?: (c: ReturnType<typeof parseCidr>) => string | undefined, what = 'an IPv4 CIDR such as 10.0.0.0/24') {
  return stringParsedBy(what, (s) => {
    const c = parseCidr(s);
    const problem = extra?.(c);
    if (problem) throw new NetParseError(s, problem);
  });
}

/** "host:port". `allowPortZero` for listen addresses, where 0 asks the kernel for a free port. */
export function hostPort(what: string, allowPortZero: boolean) {
  return stringParsedBy(what, (s) => {
    const hp = parseHostPort(s);
    if (hp.port === 0 && !allowPortZero) throw new NetParseError(s, 'port 0 is not a port one can connect to');
  });
}

export function host(what = 'a host name or IP address') {
  return stringWhere(what, isValidHost);
}

export function filePath(what = 'a path to a PEM file') {
  return stringWhere(what, (s) => s.length > 0 && !s.includes('\0'));
}
