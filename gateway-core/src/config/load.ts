// Parsing (already-decoded values) and loading (YAML files) of the two gateway configs.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError, toConfigIssues } from './errors.js';
import { type CloudConfig, type EdgeConfig, cloudConfigSchema, edgeConfigSchema } from './schema.js';

function parseWith<S extends z.ZodType>(schema: S, input: unknown, source: string): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  throw new ConfigError(source, toConfigIssues(schema, r.error.issues));
}

/** Validates a decoded edge config and fills in defaults. Throws ConfigError listing every problem. */
export function parseEdgeConfig(input: unknown, source = 'edge config'): EdgeConfig {
  return parseWith(edgeConfigSchema, input, source);
}

/** Validates a decoded cloud config and fills in defaults. Throws ConfigError listing every problem. */
export function parseCloudConfig(input: unknown, source = 'cloud config'): CloudConfig {
  return parseWith(cloudConfigSchema, input, source);
}

/** Reads a YAML file; unreadable files and YAML syntax errors become ConfigErrors with line/column. */
export function readYamlFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file'
      : err.code === 'EACCES' ? 'permission denied'
      : err.code === 'EISDIR' ? 'is a directory, expected a YAML file'
      : err.message;
    throw new ConfigError(file, [{ path: '', message: `cannot read config file: ${why}` }]);
  }
  // prettyErrors off: we print our own one-line "line L, column C" rather than a source excerpt.
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter: lines });
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.map((e) => {
      const { line, col } = lines.linePos(e.pos[0]);
      return { path: '', message: `YAML syntax error at line ${line}, column ${col}: ${e.message.split('\n')[0]}` };
    }));
  }
  // An empty file (or one that is all comments) would otherwise read as "got an empty value".
  if (doc.contents === null) throw new ConfigError(file, [{ path: '', message: 'the file is empty, expected a YAML mapping of keys to values' }]);
  return doc.toJS();
}

/**
 * Relative TLS paths are taken relative to the config file, not the working directory, so a
 * config directory (or a mounted ConfigMap with its Secret beside it) can be moved as one.
 */
type Pem = { ca: string; cert: string; key: string };
function resolveTls<T extends { control: { tls: Pem }; admin: { tls?: Pem | undefined } }>(cfg: T, file: string): T {
  const base = dirname(resolve(file));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const { ca, cert, key } = cfg.control.tls;
  cfg.control.tls = { ca: abs(ca), cert: abs(cert), key: abs(key) };
  const a = cfg.admin.tls;
  if (a) cfg.admin.tls = { ca: abs(a.ca), cert: abs(a.cert), key: abs(a.key) };
  return cfg;
}

export function loadEdgeConfig(file: string): EdgeConfig {
  return resolveTls(parseEdgeConfig(readYamlFile(file), file), file);
}

export function loadCloudConfig(file: string): CloudConfig {
  return resolveTls(parseCloudConfig(readYamlFile(file), file), file);
}
