// deploy/grafana/braid-dashboard.json is built on the metric names the gateways export: every
// metric (and every label it groups by) named in it must be in a gateway's /metrics output.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { startAdminServer, type AdminServer } from '../src/admin/http.js';
import { Telemetry } from '../src/telemetry/telemetry.js';

const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/braid-dashboard.json', import.meta.url), 'utf8')) as unknown;

/** Every PromQL expression in the dashboard (panel targets and templating queries). */
function expressions(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) expressions(n, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if ((k === 'expr' || k === 'query') && typeof v === 'string') out.push(v);
      else expressions(v, out);
    }
  }
  return out;
}

let tm: Telemetry;
let admin: AdminServer;
let exposition = '';

before(async () => {
  for (const k of Object.keys(process.env)) if (k.startsWith('OTEL_')) delete process.env[k];
  const path = {
    id: 0, name: 'lte-a', state: 'up' as const, transport: 'udp', txBytes: 1, rxBytes: 1, txPackets: 1, rxPackets: 1, txDataBytes: 1,
    rxDataBytes: 1, rttMs: 30, minRttMs: 25, rateMbps: 1, inflightBytes: 1, sendErrors: 0,
    lossRate: 0.01, controller: { dUs: 20_000, cwnd: 30_000, mode: 'window' },
  };
  tm = Telemetry.start({
    role: 'edge', id: 'e', version: '0.1.0', settings: { dashboard: false },
    view: {
      sessions: () => [{ id: 1, peer: 'cloud', paths: [path], carriers: [{ name: 'lte-a', operator: 'Telekom' }], reorder: { delivered: 1, deliveredLate: 0, skipped: 0, heldNow: 0, heldBytes: 0 }, retransmitted: 0 }],
      drops: () => ({ 'bad-tag': 1 }),
      tunnel: () => ({ rxPackets: 1, txPackets: 1, rxBytes: 1, txBytes: 1 }),
    },
  });
  tm.recordRpc('Hello', 'client', 0.01, 0);
  tm.event({ kind: 'path.up', message: 'path lte-a up', path: 'lte-a' });
  admin = await startAdminServer('127.0.0.1', 0, {
    status: () => ({}), ready: () => true, started: () => true,
    telemetry: { prometheus: tm.prometheusHandler, events: tm.events, history: tm.history, dashboard: false },
  });
  exposition = await (await fetch(`http://127.0.0.1:${admin.port}/metrics`)).text();
});

after(async () => {
  await admin?.close();
  await tm?.shutdown();
});

test('the dashboard has panels and queries', () => {
  assert.ok(expressions(dashboard).length >= 10);
});

test('every metric named in the Grafana dashboard is exported', () => {
  const exported = new Set<string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(name + s);
    else exported.add(name);
  }
  const named = new Set(expressions(dashboard).flatMap((e) => [...e.matchAll(/\bbraid_[a-z0-9_]+/g)].map((m) => m[0])));
  assert.ok(named.size >= 15, `the dashboard names ${named.size} metrics`);
  const missing = [...named].filter((n) => !exported.has(n) && !isLabel(n));
  assert.deepEqual(missing, [], `exported: ${[...exported].sort().join(', ')}`);
});

test('every label the dashboard groups by is on the exported series', () => {
  const labels = new Set(expressions(dashboard).flatMap((e) => [...e.matchAll(/\b(?:by|ignoring) \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim()))));
  // instance comes from the scrape; le from the histogram.
  labels.delete('instance');
  labels.delete('le');
  for (const l of labels) assert.match(exposition, new RegExp(`[{,]${l}="`), `label ${l} is exported`);
});

/** Label names also start with braid_ (braid_path_name...): they are checked by the label test. */
function isLabel(n: string): boolean {
  return /^braid_(path_name|drop_reason|rpc_side|event_kind|session_id|path_id|peer)$/.test(n);
}
