// The dashboard driven by headless Chromium (playwright-core + Debian's chromium) against real
// gateways in namespaces with real traffic: the per-carrier plots show data that changes over
// time, and a carrier blackout (setCarrierDown) appears on the timeline and as a marker on the
// plots. The edge serves the page inside its namespace; test/harness/forward.ts brings it to
// the host's loopback, as the demo does. A screenshot is kept in test/artifacts/ (gitignored).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { isRoot, requireRoot } from './harness/root.js';
import { createTopology, type Topology } from './harness/topology.js';
import { REPO_ROOT, iperfUdp, startIperfServer, type IperfServer } from './harness/apps.js';
import { exposeFromNamespace, type Bridge } from './harness/forward.js';
import { startGateways, type Gateways } from './harness/gateways.js';

const CHROMIUM = '/usr/bin/chromium';
/** The little of the DOM the in-page functions use (this project compiles without lib "dom"). */
declare const document: { querySelector(selector: string): { getAttribute(name: string): string | null } | null };
const ARTIFACTS = join(REPO_ROOT, 'test', 'artifacts');
const skipWhy = !isRoot() && process.env.CI !== 'true' ? 'needs root (network namespaces, TUN)'
  : !existsSync(CHROMIUM) && process.env.CI !== 'true' ? `needs ${CHROMIUM} (apt-get install chromium; scripts/setup.sh does)` : false;

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** Points attribute and count of a carrier's line in a plot ('' when not drawn yet). */
async function line(page: Page, plot: string, key: string): Promise<{ points: string; n: number; last: number }> {
  return page.evaluate(([p, k]) => {
    const el = document.querySelector(`svg[data-plot="${p}"] polyline[data-key="${k}"]`);
    return { points: el?.getAttribute('points') ?? '', n: Number(el?.getAttribute('data-n') ?? 0), last: Number(el?.getAttribute('data-last') ?? 0) };
  }, [plot, key] as const);
}

describe('dashboard in headless Chromium', { skip: skipWhy }, () => {
  let dir: string;
  let topo: Topology;
  let gw: Gateways;
  let iperf: IperfServer;
  let bridge: Bridge;
  let browser: Browser;
  let page: Page;
  let traffic: Promise<unknown> | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'braid-dash-'));
    topo = await createTopology({ carriers: [{ name: 'lte-a', rateMbit: 20 }, { name: 'lte-b', rateMbit: 10 }, { name: 'lte-c', rateMbit: 5 }] });
    iperf = await startIperfServer(topo);
    gw = await startGateways(topo, { dir, multipathDestinations: [`${topo.addr.server}/32`] });
    await gw.waitReady(30_000);
    bridge = await exposeFromNamespace(topo, topo.ns.edge, { nsPort: 9464, dir });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await traffic?.catch(() => undefined);
    await bridge?.close();
    await gw?.stop();
    await iperf?.stop();
    await topo?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('root and chromium are available', (t) => {
    requireRoot(t);
  });

  test('the plots show per-carrier data that changes over time', async () => {
    await page.goto(`http://127.0.0.1:${bridge.port}/dashboard`);
    await page.waitForSelector('#conn.ok', { timeout: 10_000 });
    assert.equal(await page.textContent('#role'), 'edge');
    traffic = iperfUdp(topo, { rateMbit: 6, seconds: 20 });
    await page.waitForFunction(() => Number(document.querySelector('svg[data-plot="throughput"] polyline[data-key="lte-a"]')?.getAttribute('data-n') ?? 0) >= 3, undefined, { timeout: 15_000 });
    const first = await line(page, 'throughput', 'lte-a');
    await page.waitForTimeout(3000);
    const later = await line(page, 'throughput', 'lte-a');
    assert.ok(later.n > first.n, `more throughput points after 3 s (${first.n} -> ${later.n})`);
    assert.notEqual(later.points, first.points, 'the line moved');
    // Traffic is flowing: the carriers together carry most of the 6 Mbit/s stream.
    const lasts = await Promise.all(['lte-a', 'lte-b', 'lte-c'].map((k) => line(page, 'throughput', k)));
    const sum = lasts.reduce((s, l) => s + l.last, 0);
    assert.ok(sum > 3, `carriers carry ${sum.toFixed(2)} Mbit/s together`);
    for (const plot of ['rtt', 'share', 'loss']) {
      const l = await line(page, plot, 'lte-a');
      assert.ok(l.n > 0, `${plot} plot has lte-a data`);
    }
    assert.ok((await page.$$('#paths tr')).length === 3, 'three paths in the table');
    assert.ok((await page.$$('#sessions tr')).length === 1, 'one session in the table');
  });

  test('a carrier blackout appears on the timeline and the plots; a screenshot is kept', async () => {
    await topo.setCarrierDown(0);
    try {
      await page.waitForSelector('#timeline li[data-kind="path.down"][data-path="lte-a"]', { timeout: 20_000 });
      // A vertical line has an empty bounding box: Playwright calls it hidden, so wait for it attached.
      await page.waitForSelector('svg[data-plot="throughput"] line[data-marker="path.down"]', { state: 'attached', timeout: 5_000 });
      const stateCell = await page.textContent('#paths tr[data-path="lte-a"] td:nth-child(3)');
      assert.equal(stateCell, 'down');
      await page.waitForTimeout(1500);
      await mkdir(ARTIFACTS, { recursive: true });
      const file = join(ARTIFACTS, 'dashboard.png');
      await page.screenshot({ path: file, fullPage: true });
      assert.ok(existsSync(file));
    } finally {
      await topo.setCarrierUp(0);
    }
    await page.waitForSelector('#timeline li[data-kind="path.recovered"][data-path="lte-a"]', { timeout: 20_000 });
  });
});
