// The policy-down leg of the control loop, measured: from a change in the cloud's policy store
// (an overlay, as the fleet sets one) to the edge's PolicyClient having validated and applied it
// (compilePolicy + applyToSession on a live Session), and to the cloud having the edge's ack.
// Real mTLS gRPC over loopback, one edge. Prints p50/p99/max in milliseconds.
//
//   node --conditions=source --import tsx bench/policy-push.ts [CHANGES]
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  applyToSession, compilePolicy, createPolicyService, FilePolicyStore, PolicyClient, RateWeightedScheduler, Session, SimClock, startControlServer, type TlsFiles,
} from '@braid/gateway-core';

const N = Number(process.argv[2] ?? 200);
const dir = mkdtempSync(join(tmpdir(), 'braid-policy-bench-'));
execFileSync('bash', [new URL('../scripts/gen-dev-certs.sh', import.meta.url).pathname, dir]);
const tls = (n: string): TlsFiles => ({ ca: join(dir, 'ca.pem'), cert: join(dir, `${n}.pem`), key: join(dir, `${n}.key`) });

const store = await FilePolicyStore.open();
await store.setGlobal({ carriers: { 'lte-a': { tier: 'primary' }, 'lte-b': { tier: 'primary' } } });
const acked = new Map<number, number>();
const svc = createPolicyService({ store, onAck: (_e, a) => { if (a.result === 'POLICY_RESULT_APPLIED') acked.set(a.version, performance.now()); } });
const server = await startControlServer({ listen: '127.0.0.1:0', tls: tls('cloud'), onHello: async () => { throw new Error('unused'); }, services: [svc.service] });
const k = randomBytes(32);
const session = new Session({
  sessionId: 1, sendKey: k, recvKey: k, pathNames: ['lte-a', 'lte-b'], clock: new SimClock(), scheduler: new RateWeightedScheduler(), lowLatency: false,
  keepaliveMs: 1000, ackIntervalMs: 10, ackEveryPackets: 8, pathDeadMs: 300, reorder: { holdMs: 100, maxPackets: 100, maxBytes: 1 << 20 }, replayWindow: 1024, deliver: () => undefined,
});
const applied = new Map<number, number>();
const client = new PolicyClient({
  target: `127.0.0.1:${server.port}`, tls: tls('edge'), serverName: 'localhost',
  apply: (r) => {
    applyToSession(session, compilePolicy(r.policy, ['lte-a', 'lte-b']));
    applied.set(r.version, performance.now());
  },
});
client.start();
const wait = async (fn: () => boolean): Promise<void> => {
  const end = Date.now() + 10_000;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setImmediate(r));
  }
};
await wait(() => client.status().version === 1);
const toApply: number[] = [];
const toAck: number[] = [];
for (let i = 0; i < N; i++) {
  const t0 = performance.now();
  await store.setOverlay('edge-1', 'fleet.degradation', { carriers: { 'lte-b': { tier: i % 2 === 0 ? 'backup' : 'primary' } } });
  const v = store.effective('edge-1').version;
  await wait(() => acked.has(v));
  toApply.push(applied.get(v)! - t0);
  toAck.push(acked.get(v)! - t0);
}
const q = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const fmt = (xs: number[]): string => `p50 ${q(xs, 0.5).toFixed(2)} ms, p99 ${q(xs, 0.99).toFixed(2)} ms, max ${Math.max(...xs).toFixed(2)} ms`;
console.log(`${N} policy changes, store change -> applied on the edge: ${fmt(toApply)}`);
console.log(`${N} policy changes, store change -> ack at the cloud:    ${fmt(toAck)}`);
client.stop();
session.close();
await server.close();
await store.close();
rmSync(dir, { recursive: true, force: true });
