// `braid policy get|set`: the policy through the admin API (GetPolicy / SetPolicy). Human text
// by default, the API's answer with the policy as a JSON object with --json.
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import type { AdminPolicy } from '../control/admin-policy.js';
import type { Policy } from '../policy/model.js';

export interface PolicyCommand {
  action: 'get' | 'set';
  edgeId: string;
  file?: string | undefined;
  clear: boolean;
}

/** Parses `policy get` / `policy set FILE` / `policy set --clear`; a usage error message otherwise. */
export function policyCommand(rest: string[], edge: string | undefined, clear: boolean): PolicyCommand | string {
  const [action, ...args] = rest;
  if (action === 'get') {
    if (args.length > 0 || clear) return 'usage: braid policy get [--edge ID]';
    return { action, edgeId: edge ?? '', clear: false };
  }
  if (action === 'set') {
    if (clear) {
      if (args.length > 0 || !edge) return 'usage: braid policy set --edge ID --clear (removes that edge\'s override)';
      return { action, edgeId: edge, clear: true };
    }
    if (args.length !== 1) return 'usage: braid policy set FILE [--edge ID]   (FILE: YAML or JSON policy document, see docs/policy.md)';
    return { action, edgeId: edge ?? '', file: args[0], clear: false };
  }
  return `unknown policy command "${action ?? ''}": policy get | policy set FILE`;
}

/** The document of a file as JSON text for SetPolicy (YAML or JSON in; the gateway validates). */
export async function policyFileJson(file: string): Promise<string> {
  const text = await readFile(file, 'utf8');
  let doc: unknown;
  try {
    doc = parse(text) ?? {};
  } catch (e) {
    throw new Error(`${file} is not YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  return JSON.stringify(doc);
}

const kb = (n: number): string => (n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`);

function summary(p: Policy): string[] {
  const a = p.classes.algorithms;
  const lines = [
    ['schedule', `alpha ${p.schedule.alpha}, beta ${p.schedule.beta}, retransmit F ${p.schedule.retransmitF}, first-bytes pinning ${kb(p.schedule.pinBytes)}`],
    ['algorithms', `bulk ${a.bulk}, interactive ${a.interactive}, realtime ${a.realtime}, retransmit ${a.retransmit}`],
    ['rules', p.classes.rules.length === 0 ? 'built-in only' : `${p.classes.rules.length} before the built-in ones`],
    ['users', p.users.length === 0 ? 'none listed' : p.users.map((u) => `${u.address}${u.privileged ? ' (privileged)' : ''} priority ${u.priority}`).join(', ')],
    ['low latency', `preferred ${p.lowLatency.preferredLinkTypes.join(', ') || 'none'}; services ${Object.keys(p.lowLatency.services).join(', ') || 'none'}`],
    ['cut-off', p.latency.cutoffMs !== undefined ? `${p.latency.cutoffMs} ms unless a carrier has its own` : 'none'],
  ];
  return lines.map(([k, v]) => `${(k as string).padEnd(11)} ${v}`);
}

function carrierTable(p: Policy, table: (h: string[], r: (string | number)[][]) => string): string {
  const names = Object.keys(p.carriers).sort();
  if (names.length === 0) return 'carriers    all primary, no caps\n';
  return table(['CARRIER', 'TIER', 'CAP', 'BILLING DAY', 'CUT-OFF ms'], names.map((n) => {
    const c = p.carriers[n]!;
    return [n, c.tier, c.dataCap ? `${c.dataCap.bytes} B` : '-', c.dataCap ? String(c.dataCap.billingDay) : '-', c.latencyCutoffMs !== undefined ? String(c.latencyCutoffMs) : '-'];
  }));
}

export function renderPolicy(r: AdminPolicy, table: (h: string[], r: (string | number)[][]) => string): string {
  const out: string[] = [];
  const policy = r.policyJson ? (JSON.parse(r.policyJson) as Policy) : undefined;
  if (r.role === 'edge') {
    out.push(`policy      ${r.version > 0 ? `version ${r.version} from the cloud, applied ${new Date(r.appliedUnixMs).toISOString()}` : 'none from the cloud yet (running on its configuration)'}`);
    out.push(`stream      ${r.connected ? 'up' : 'down'}`);
    if (r.rejectedVersion > 0) out.push(`rejected    version ${r.rejectedVersion}: ${r.rejectedReason}`);
  } else {
    out.push(`policy      version ${r.version}`);
  }
  if (r.sources.length > 0) out.push(`sources     ${r.sources.join(', ')}`);
  if (r.sha256) out.push(`sha256      ${r.sha256}`);
  let text = out.join('\n') + '\n';
  if (policy) text += summary(policy).join('\n') + '\n' + carrierTable(policy, table);
  if (r.role === 'cloud') {
    text += r.edges.length === 0 ? 'edges       none has opened a policy stream\n'
      : table(['EDGE', 'STREAM', 'SENT', 'APPLIED', 'REJECTED'], r.edges.map((e) => [e.edgeId, e.connected ? 'up' : 'down', e.sentVersion, e.appliedVersion,
        e.rejectedVersion ? `${e.rejectedVersion}: ${e.rejectedReason}` : '-']));
  }
  return text;
}

/** --json: the reply with the policy documents as objects, not strings. */
export function policyJsonView(r: AdminPolicy): unknown {
  const { policyJson, documentJson, ...rest } = r;
  return { ...rest, policy: policyJson ? JSON.parse(policyJson) : null, document: documentJson ? JSON.parse(documentJson) : null };
}
