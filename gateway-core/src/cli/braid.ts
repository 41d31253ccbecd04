// braid: the operator's command line. Talks to a gateway's admin gRPC API (braid.v1.AdminService,
// mutual TLS with an operator certificate) and prints human tables, or JSON with --json.
//
//   braid [options] status | paths | sessions | events [--after N] [--limit N]
//   braid [options] policy get [--edge ID] | policy set FILE [--edge ID] | policy set --edge ID --clear
//
// Exit codes: 0 done; 1 the gateway could not be reached or refused the call; 2 usage error.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { callAdmin, type AdminCallOptions } from '../control/admin-client.js';
import type { AdminPolicy } from '../control/admin-policy.js';
import { policyCommand, policyFileJson, policyJsonView, renderPolicy, type PolicyCommand } from './policy.js';
import type { AdminEvent, AdminPath, AdminSession, AdminStatus } from '../control/admin-api.js';
import { ControlError } from '../control/errors.js';
import type { AdminMethod } from '../control/admin-proto.js';

export const DEFAULT_ADMIN_TARGET = '127.0.0.1:9466';

const USAGE = `usage: braid [options] <command>

commands:
  status              the gateway in a few lines
  paths               every path of every session (carrier, state, RTT, rate, bytes)
  sessions            the sessions the gateway holds
  events              the event timeline (path up/down/recovered, sessions, policy), oldest first
                      --after N: only events after sequence number N; --limit N: the newest N
  policy get          the policy: on an edge the version in force; on the cloud the global
                      policy (--edge ID: that edge's effective policy) and every edge's acks
  policy set FILE     cloud only: validate, store and push a policy document (YAML or JSON,
                      docs/policy.md); --edge ID: as that edge's override; --edge ID --clear:
                      remove the override

options:
  --target HOST:PORT  admin API of the gateway (env BRAID_ADMIN; default ${DEFAULT_ADMIN_TARGET})
  --certs DIR         directory with ca.pem, operator.pem, operator.key (env BRAID_CERTS)
  --ca FILE --cert FILE --key FILE
                      the files one by one (they override --certs)
  --server-name NAME  name to verify the gateway's certificate against (env BRAID_SERVER_NAME)
  --timeout MS        deadline of the call (default 5000)
  --json              print the API's answer as JSON instead of a table
  --help              this text
`;

export interface CliIo {
  out(s: string): void;
  err(s: string): void;
  env: NodeJS.ProcessEnv;
}

/** Columns padded to their widest cell; numbers right-aligned. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const width = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = head.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  return cells.map((r) => r.map((c, i) => (numeric[i] ? c.padStart(width[i]!) : c.padEnd(width[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

export function bytes(n: number): string {
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
  return `${v.toFixed(i ? 1 : 0)} ${u[i]}`;
}

function renderStatus(s: AdminStatus): string {
  const drops = Object.entries(s.drops ?? {}).filter(([, n]) => Number(n) > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  const rows: [string, string][] = [
    ['gateway', `${s.role} ${s.id} (version ${s.version})`],
    ['ready', s.ready ? 'yes' : 'no'],
    ['uptime', `${s.uptimeS.toFixed(1)} s`],
    ['sessions', String(s.sessions)],
    ['paths', `${s.pathsUp}/${s.pathsTotal} up`],
    ['tunnel', `received ${s.tunnelRxPackets} packets (${bytes(s.tunnelRxBytes)}), sent ${s.tunnelTxPackets} packets (${bytes(s.tunnelTxBytes)})`],
    ['drops', drops],
  ];
  return rows.map(([k, v]) => `${k.padEnd(9)} ${v}`).join('\n') + '\n';
}

function renderPaths(paths: AdminPath[]): string {
  if (paths.length === 0) return 'no paths (no session yet)\n';
  return table(['SESSION', 'PEER', 'PATH', 'CARRIER', 'TECH', 'IFACE', 'STATE', 'RTT ms', 'RATE Mbit/s', 'SENT', 'RECEIVED', 'ERRORS'],
    paths.map((p) => [String(p.sessionId), p.peer, p.name, p.operator || '-', p.technology || '-', p.interface || '-', p.state,
      p.rttKnown ? p.rttMs.toFixed(1) : '-', p.rateMbps.toFixed(2), bytes(p.txBytes), bytes(p.rxBytes), p.sendErrors]));
}

function renderSessions(sessions: AdminSession[]): string {
  if (sessions.length === 0) return 'no sessions\n';
  return table(['SESSION', 'PEER', 'PATHS UP', 'SENT', 'RECEIVED', 'DELIVERED', 'GAPS'],
    sessions.map((s) => [String(s.id), s.peer, `${s.pathsUp}/${s.pathsTotal}`, bytes(s.txBytes), bytes(s.rxBytes), s.reorderDelivered, s.reorderSkipped]));
}

function renderEvents(events: AdminEvent[]): string {
  if (events.length === 0) return 'no events\n';
  return table(['SEQ', 'TIME', 'KIND', 'SESSION', 'PATH', 'MESSAGE'],
    events.map((e) => [e.seq, new Date(e.timeUnixMs).toISOString().replace('T', ' ').replace('Z', ''), e.kind, e.sessionId ? String(e.sessionId) : '-', e.path || '-', e.message]));
}

export async function runBraidCli(argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        target: { type: 'string' }, certs: { type: 'string' }, ca: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' },
        'server-name': { type: 'string' }, timeout: { type: 'string' }, json: { type: 'boolean', default: false },
        after: { type: 'string' }, limit: { type: 'string' }, help: { type: 'boolean', short: 'h' },
        edge: { type: 'string' }, clear: { type: 'boolean', default: false },
      },
    });
  } catch (e) {
    io.err(`braid: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    io.out(USAGE);
    return 0;
  }
  const [command, ...rest] = positionals;
  let pc: PolicyCommand | undefined;
  if (command === 'policy') {
    const r = policyCommand(rest, v.edge, v.clear === true);
    if (typeof r === 'string') {
      io.err(`braid: ${r}\n`);
      return 2;
    }
    pc = r;
  } else if (v.edge !== undefined || v.clear) {
    io.err('braid: --edge and --clear belong to "policy get|set"\n');
    return 2;
  }
  const methods: Record<string, AdminMethod> = { status: 'GetStatus', paths: 'ListPaths', sessions: 'ListSessions', events: 'ListEvents' };
  if (!pc && (!command || !(command in methods) || rest.length > 0)) {
    io.err(`braid: ${command ? `unknown command "${[command, ...rest].join(' ')}"` : 'a command is required'}\n\n${USAGE}`);
    return 2;
  }
  const certs = v.certs ?? io.env.BRAID_CERTS;
  const ca = v.ca ?? (certs ? join(certs, 'ca.pem') : undefined);
  const cert = v.cert ?? (certs ? join(certs, 'operator.pem') : undefined);
  const key = v.key ?? (certs ? join(certs, 'operator.key') : undefined);
  if (!ca || !cert || !key) {
    io.err('braid: an operator certificate is needed: --certs DIR (or BRAID_CERTS), or --ca, --cert and --key\n');
    return 2;
  }
  const num = (name: string, s: string | undefined, dflt: number): number | undefined => {
    if (s === undefined) return dflt;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) {
      io.err(`braid: --${name} needs a non-negative integer, got ${s}\n`);
      return undefined;
    }
    return n;
  };
  const timeout = num('timeout', v.timeout, 5000);
  const after = num('after', v.after, 0);
  const limit = num('limit', v.limit, 0);
  if (timeout === undefined || after === undefined || limit === undefined) return 2;
  const target = v.target ?? io.env.BRAID_ADMIN ?? DEFAULT_ADMIN_TARGET;
  const callOpts = { target, tls: { ca, cert, key }, serverName: v['server-name'] ?? io.env.BRAID_SERVER_NAME, deadlineMs: timeout };
  if (pc) return runPolicy(pc, callOpts, v.json === true, io);
  const method = methods[command!]!;
  let reply: unknown;
  try {
    reply = await callAdmin(callOpts, method, method === 'ListEvents' ? { afterSeq: after, limit } : {});
  } catch (e) {
    io.err(`braid: ${e instanceof ControlError ? e.message : (e as Error).message}\n`);
    return 1;
  }
  const r = reply as { paths?: AdminPath[]; sessions?: AdminSession[]; events?: AdminEvent[] };
  const body = command === 'status' ? reply : command === 'paths' ? r.paths ?? [] : command === 'sessions' ? r.sessions ?? [] : r.events ?? [];
  if (v.json) {
    io.out(JSON.stringify(body, null, 2) + '\n');
    return 0;
  }
  switch (command) {
    case 'status': io.out(renderStatus(reply as AdminStatus)); break;
    case 'paths': io.out(renderPaths(body as AdminPath[])); break;
    case 'sessions': io.out(renderSessions(body as AdminSession[])); break;
    default: io.out(renderEvents(body as AdminEvent[]));
  }
  return 0;
}

async function runPolicy(pc: PolicyCommand, opts: AdminCallOptions, json: boolean, io: CliIo): Promise<number> {
  try {
    if (pc.action === 'get') {
      const r = (await callAdmin(opts, 'GetPolicy', { edgeId: pc.edgeId })) as AdminPolicy;
      io.out(json ? JSON.stringify(policyJsonView(r), null, 2) + '\n' : renderPolicy(r, table));
      return 0;
    }
    let policyJson = '';
    if (pc.file) {
      try {
        policyJson = await policyFileJson(pc.file);
      } catch (e) {
        io.err(`braid: cannot use ${pc.file}: ${(e as Error).message}\n`);
        return 2;
      }
    }
    const r = (await callAdmin(opts, 'SetPolicy', { policyJson, edgeId: pc.edgeId, clear: pc.clear })) as { version: number; sources: string[]; edgesNotified: number };
    if (json) io.out(JSON.stringify(r, null, 2) + '\n');
    else {
      const what = pc.clear ? `override of edge ${pc.edgeId} removed` : pc.edgeId ? `override of edge ${pc.edgeId} stored` : 'global policy stored';
      io.out(`${what}: version ${r.version} (${r.sources.join(', ') || 'defaults'}); pushed to ${r.edgesNotified} connected edge${r.edgesNotified === 1 ? '' : 's'}\n`);
    }
    return 0;
  } catch (e) {
    io.err(`braid: ${e instanceof ControlError ? e.message : (e as Error).message}\n`);
    return 1;
  }
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const code = await runBraidCli(argv, {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    env: process.env,
  });
  process.exitCode = code;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
