// Re-establishment: the cloud gateway restarts and forgets every session. The edge notices
// that no path is up any more, says Hello again and carries traffic on the new session.
// The restarted cloud has the TCP relay off (dataPlane.tcpRelay.enabled: false), so the edge
// must also drop its relay redirect: client TCP that was split in the first session goes end
// to end through the TUN device in the second. Needs root (namespaces, TUN).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { isRoot, requireRoot } from './harness/root.js';
import { REPO_ROOT, curlDownload, sleep } from './harness/apps.js';
import { startTunnelFixture, type TunnelFixture } from './harness/fixture.js';

describe('the cloud restarts', { skip: !isRoot() && process.env.CI !== 'true' ? 'needs root (network namespaces, TUN)' : false }, () => {
  let fx: TunnelFixture;

  before(async () => {
    fx = await startTunnelFixture({
      name: 'braid-rehello',
      carriers: [20, 10].map((r, i) => ({ name: `lte-${'ab'[i]}`, rateMbit: r })),
      files: { 'f.bin': 2 * 1024 * 1024 },
    });
  });

  after(async () => {
    await fx?.stop();
  });

  test('root is available', (t) => {
    requireRoot(t);
  });

  test('the edge says Hello again and traffic flows on a new session', async () => {
    const { topo, gw, nginx, dir } = fx;
    const first = await gw.edgeStatus() as unknown as { sessionId: number };
    assert.ok((await curlDownload(topo, nginx.url('f.bin'), { timeoutS: 30 })).ok);
    const relayed = await gw.edgeStatus();
    assert.ok((relayed.tcpRelay?.opened ?? 0) >= 1, `the first session relayed the download: ${JSON.stringify(relayed.tcpRelay)}`);
    await gw.cloud.stop();
    const cfg = parse(await readFile(gw.configs.cloud, 'utf8')) as { dataPlane?: Record<string, unknown> };
    cfg.dataPlane = { ...cfg.dataPlane, tcpRelay: { enabled: false } };
    const noRelay = join(dir, 'cloud-no-relay.yaml');
    await writeFile(noRelay, stringify(cfg));
    const cloud = topo.spawn(topo.ns.cloud, [process.execPath, '--conditions=source', '--import', 'tsx', join('gateway-cloud', 'src', 'main.ts'), '--config', noRelay], {
      name: 'cloud-restarted', cwd: REPO_ROOT, logFile: join(dir, 'cloud-restarted.log'),
    });
    try {
      let sessionId = first.sessionId;
      const deadline = Date.now() + 40_000;
      while (Date.now() < deadline) {
        await sleep(1000);
        const st = await gw.edgeStatus().catch(() => undefined) as unknown as { sessionId: number; ready: boolean } | undefined;
        if (st && st.sessionId !== first.sessionId && st.ready) {
          sessionId = st.sessionId;
          break;
        }
      }
      assert.notEqual(sessionId, first.sessionId, 'the edge established a new session');
      const before = await gw.edgeStatus();
      assert.equal(before.tcpRelay, null, 'the new cloud does not relay, so neither does the edge');
      const r = await curlDownload(topo, nginx.url('f.bin'), { timeoutS: 30 });
      assert.ok(r.ok, r.error);
      assert.equal(r.sha256, fx.sha['f.bin']);
      // End to end: the download's packets came out of the TUN device (a relayed one comes out of the relay's socket).
      const after = await gw.edgeStatus();
      const tunOut = after.tunnel.txBytes - before.tunnel.txBytes;
      assert.ok(tunOut >= 2 * 1024 * 1024, `the download went through the TUN device end to end: ${tunOut} B`);
    } finally {
      await topo.release(cloud);
    }
  });
});
