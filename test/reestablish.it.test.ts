// Re-establishment: the cloud gateway restarts and forgets every session. The edge notices
// that no path is up any more, says Hello again and carries traffic on the new session,
// with its interception rules untouched. Needs root (namespaces, TUN).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, requireRoot } from './harness/root.js';
import { createTopology, type Topology } from './harness/topology.js';
import { REPO_ROOT, curlDownload, makeRandomFile, sleep, startNginx, type Nginx } from './harness/apps.js';
import { startGateways, type Gateways } from './harness/gateways.js';

describe('the cloud restarts', { skip: !isRoot() && process.env.CI !== 'true' ? 'needs root (network namespaces, TUN)' : false }, () => {
  let dir: string;
  let topo: Topology;
  let gw: Gateways;
  let nginx: Nginx;
  let sha: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'braid-rehello-'));
    topo = await createTopology({ carriers: [20, 10].map((r, i) => ({ name: `lte-${'ab'[i]}`, rateMbit: r })) });
    nginx = await startNginx(topo, dir);
    sha = await makeRandomFile(nginx.root, 'f.bin', 2 * 1024 * 1024);
    gw = await startGateways(topo, { dir, multipathDestinations: [`${topo.addr.server}/32`] });
    await gw.waitReady(30_000);
  });

  after(async () => {
    await gw?.stop();
    await nginx?.stop();
    await topo?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('root is available', (t) => {
    requireRoot(t);
  });

  test('the edge says Hello again and traffic flows on a new session', async () => {
    const first = await gw.edgeStatus() as unknown as { sessionId: number };
    assert.ok((await curlDownload(topo, nginx.url('f.bin'), { timeoutS: 30 })).ok);
    await gw.cloud.stop();
    const cloud = topo.spawn(topo.ns.cloud, [process.execPath, '--conditions=source', '--import', 'tsx', join('gateway-cloud', 'src', 'main.ts'), '--config', gw.configs.cloud], {
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
      const r = await curlDownload(topo, nginx.url('f.bin'), { timeoutS: 30 });
      assert.ok(r.ok, r.error);
      assert.equal(r.sha256, sha);
    } finally {
      await topo.release(cloud);
    }
  });
});
