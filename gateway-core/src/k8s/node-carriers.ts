// The edge's carrier metadata (operator, MCC/MNC, technology) from its Node's annotations, so a
// fleet shares one chart while each router describes its own SIMs:
//
//   braid.io/carrier.<carrier name>.operator:   "Telekom"
//   braid.io/carrier.<carrier name>.mcc:        "262"
//   braid.io/carrier.<carrier name>.mnc:        "01"
//   braid.io/carrier.<carrier name>.technology: "nr"
//
// Annotations override edge.yaml's metadata field by field; a value that breaks the rules of
// edge.yaml (docs/configuration.md) is ignored and reported, never half-applied. Without API
// access (RBAC off, no cluster, API down) the edge keeps its configured metadata.
import type { V1Node } from '@kubernetes/client-node';
import { CARRIER_TECHNOLOGIES, type CarrierConfig } from '../config/index.js';
import { silentLogger, type Logger } from '../log.js';

export const CARRIER_ANNOTATION_PREFIX = 'braid.io/carrier.';

export interface NodeSource {
  getNode(name: string): Promise<V1Node>;
}

type Metadata = NonNullable<CarrierConfig['metadata']>;
const FIELDS: Record<keyof Metadata, (v: string) => string | undefined> = {
  operator: (v) => (v.length > 0 && v.length <= 64 ? undefined : 'expected 1-64 characters'),
  mcc: (v) => (/^[0-9]{3}$/.test(v) ? undefined : 'expected 3 digits'),
  mnc: (v) => (/^[0-9]{2,3}$/.test(v) ? undefined : 'expected 2-3 digits'),
  technology: (v) => ((CARRIER_TECHNOLOGIES as readonly string[]).includes(v) ? undefined : `expected one of ${CARRIER_TECHNOLOGIES.join(', ')}`),
};

export interface AnnotatedCarriers {
  carriers: CarrierConfig[];
  /** "annotation: why" for each annotation that was not applied. */
  ignored: string[];
}

/** Pure: carriers with the node's annotations applied. */
export function carriersFromNodeAnnotations(carriers: readonly CarrierConfig[], annotations: Record<string, string> | undefined): AnnotatedCarriers {
  const ignored: string[] = [];
  const byName = new Map(carriers.map((c) => [c.name, { ...c, metadata: c.metadata ? { ...c.metadata } : undefined } as CarrierConfig]));
  for (const [key, value] of Object.entries(annotations ?? {})) {
    if (!key.startsWith(CARRIER_ANNOTATION_PREFIX)) continue;
    const rest = key.slice(CARRIER_ANNOTATION_PREFIX.length);
    const dot = rest.lastIndexOf('.');
    const name = rest.slice(0, dot);
    const field = rest.slice(dot + 1) as keyof Metadata;
    const carrier = byName.get(name);
    if (dot <= 0 || !carrier) {
      ignored.push(`${key}: no carrier named ${JSON.stringify(name)} in edge.yaml`);
      continue;
    }
    const check = FIELDS[field];
    if (!check) {
      ignored.push(`${key}: unknown field ${JSON.stringify(field)} (operator, mcc, mnc, technology)`);
      continue;
    }
    const why = check(value);
    if (why) {
      ignored.push(`${key}: ${why}, got ${JSON.stringify(value)}`);
      continue;
    }
    carrier.metadata = { ...carrier.metadata, [field]: value } as Metadata;
  }
  return { carriers: carriers.map((c) => byName.get(c.name) as CarrierConfig), ignored };
}

export interface NodeCarrierResult extends AnnotatedCarriers {
  /** "node" when the annotations were read, "config" when the API was not available. */
  from: 'node' | 'config';
  reason?: string;
}

/** Reads the node's annotations when it can; otherwise the configured carriers, with the reason. */
export async function readNodeCarriers(
  carriers: readonly CarrierConfig[], nodeName: string | undefined, source: NodeSource | undefined, log: Logger = silentLogger,
): Promise<NodeCarrierResult> {
  if (!source || !nodeName) {
    return { carriers: [...carriers], ignored: [], from: 'config', reason: !source ? 'no Kubernetes API' : 'NODE_NAME not set' };
  }
  try {
    const node = await source.getNode(nodeName);
    const r = carriersFromNodeAnnotations(carriers, node.metadata?.annotations);
    for (const why of r.ignored) log.warn({ node: nodeName }, `node annotation ignored: ${why}`);
    return { ...r, from: 'node' };
  } catch (e) {
    const reason = apiErrorReason(e);
    log.warn({ node: nodeName, reason }, 'cannot read node annotations; using the carrier metadata of edge.yaml');
    return { carriers: [...carriers], ignored: [], from: 'config', reason };
  }
}

/** "403 Forbidden" / "ECONNREFUSED" ... from client-node's errors, for one log line. */
export function apiErrorReason(e: unknown): string {
  const err = e as { code?: number | string; statusCode?: number; message?: string };
  const code = err.code ?? err.statusCode;
  return code !== undefined ? `${code}: ${(err.message ?? '').split('\n')[0]}` : String(err.message ?? e);
}
