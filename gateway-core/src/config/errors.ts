// ConfigError: every problem in a config file, one line each, "<source>: <path>: <what is wrong>".
import type { z } from 'zod';
import { knownKeysAt } from './introspect.js';

export interface ConfigIssue {
  /** Dotted path with list indexes, e.g. "carriers[1].interface"; "" for the file as a whole. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  /** The file name (or caller-supplied label) the problems were found in. */
  readonly source: string;

  constructor(source: string, issues: ConfigIssue[]) {
    super(issues.map((i) => `${source}: ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n'));
    this.name = 'ConfigError';
    this.source = source;
    this.issues = issues;
  }
}

/** ["carriers", 1, "interface"] -> "carriers[1].interface" */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out;
}

/** Levenshtein distance, case-insensitive: "holdms" and "holdMs" are the same key misspelt. */
export function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[y.length] ?? 0;
}

/** The known key closest to `key`, if it is close enough to be a plausible typo. */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const d = editDistance(key, k);
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  const limit = Math.max(2, Math.floor(key.length / 3));
  return bestDist <= limit ? best : undefined;
}

function unknownKeyMessage(key: string, known: readonly string[] | undefined): string {
  if (!known) return 'unknown key';
  const guess = suggestKey(key, known);
  if (guess) return `unknown key, did you mean "${guess}"?`;
  return `unknown key (allowed here: ${known.join(', ')})`;
}

/** Turns zod issues into ConfigIssues; one unknown-key issue per key, with a suggestion. */
export function toConfigIssues(schema: z.ZodType, issues: readonly z.core.$ZodIssue[]): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const iss of issues) {
    if (iss.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, iss.path);
      for (const key of iss.keys) out.push({ path: formatPath([...iss.path, key]), message: unknownKeyMessage(key, known) });
    } else {
      out.push({ path: formatPath(iss.path), message: iss.message });
    }
  }
  return out;
}
