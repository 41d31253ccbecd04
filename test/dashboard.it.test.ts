// The dashboard driven by headless Chromium (playwright-core + Debian's chromium) against a
// running demo (`test/demo/main.ts --carriers tbf`, real gateways and traffic in namespaces):
// the per-carrier plots show data that changes over time, and a carrier blackout appears on
// the timeline and as a marker on the plots, then its recovery. The edge serves the page inside
// its namespace; the demo forwards it to the host's loopback and prints the address, which is
// what this test opens. A screenshot is kept in test/artifacts/ (gitignored).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { isRoot, requireRoot } from './harness/root.js';
import { REPO_ROOT } from './harness/apps.js';
import { run } from './harness/netns.js';

const CHROMIUM = '/usr/bin/chromium';
/** The little of the DOM the in-page functions use (this project compiles without lib "dom"). */
declare const document: { querySelector(selector: string): { getAttribute(name: string): string | null } | null };
const ARTIFACTS = join(REPO_ROOT, 'test', 'artifacts');
const DEMO_SECONDS = 40;
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

/**
 * Blackout of a demo carrier without touching its routes: everything forwarded through the
 * carrier's namespace is dropped (nftables, removed again by `blackout(..., false)`).
 */
async function blackout(ns: string, on: boolean): Promise<void> {
  if (on) {
    await run(['ip', 'netns', 'exec', ns, 'nft', 'add table inet braid_blackout']);
    await run(['ip', 'netns', 'exec', ns, 'nft', 'add chain inet braid_blackout drop_all { type filter hook forward priority -300 ; policy drop ; }']);
  } else {
    await run(['ip', 'netns', 'exec', ns, 'nft', 'delete table inet braid_blackout']);
  }
}

describe('dashboard of a running demo in headless Chromium', { skip: skipWhy }, () => {
  let demo: ChildProcess | undefined;
  let demoExit: Promise<number | null> | undefined;
  let stderr = '';
  let stdout = '';
  let url = '';
  let browser: Browser | undefined;
  let page: Page;
  let carrierNs = '';

  before(async () => {
    if (!isRoot()) return;
    demo = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'test/demo/main.ts', '--duration', String(DEMO_SECONDS), '--json', '--carriers', 'tbf'], {
      cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const d = demo;
    demoExit = new Promise((resolve) => d.once('exit', (code) => resolve(code)));
    d.stdout?.on('data', (c: Buffer) => { stdout += c.toString(); });
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the demo printed no dashboard address in 90 s:\n${stderr}`)), 90_000);
      d.stderr?.on('data', (c: Buffer) => {
        stderr += c.toString();
        const m = /edge dashboard: (http:\/\/\S+)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      d.once('exit', (code) => reject(new Error(`demo exited (${code}) before printing the dashboard address:\n${stderr}`)));
    });
    // The demo's namespaces are named after its pid (test/harness/topology.ts defaultPrefix).
    carrierNs = `br${(d.pid ?? 0) % 100000}-car0`;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (carrierNs) await blackout(carrierNs, false).catch(() => undefined);
    // The demo cleans up its namespaces on SIGINT.
    if (demo && demo.exitCode === null) demo.kill('SIGINT');
    await demoExit;
  });

  test('root and chromium are available', (t) => {
    requireRoot(t);
  });

  test('the demo prints the dashboard address; the plots show per-carrier data that changes over time', async () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/dashboard$/);
    await page.goto(url);
    await page.waitForSelector('#conn.ok', { timeout: 10_000 });
    assert.equal(await page.textContent('#role'), 'edge');
    await page.waitForFunction(() => Number(document.querySelector('svg[data-plot="throughput"] polyline[data-key="lte-a"]')?.getAttribute('data-n') ?? 0) >= 3, undefined, { timeout: 15_000 });
    const first = await line(page, 'throughput', 'lte-a');
    await page.waitForTimeout(3000);
    const later = await line(page, 'throughput', 'lte-a');
    assert.ok(later.n > first.n, `more throughput points after 3 s (${first.n} -> ${later.n})`);
    assert.notEqual(later.points, first.points, 'the line moved');
    // The demo's traffic is flowing: the carriers together carry more than keepalives.
    const lasts = await Promise.all(['lte-a', 'lte-b', 'lte-c'].map((k) => line(page, 'throughput', k)));
    const sum = lasts.reduce((s, l) => s + l.last, 0);
    assert.ok(sum > 1, `carriers carry ${sum.toFixed(2)} Mbit/s together`);
    for (const plot of ['rtt', 'share', 'loss']) {
      const l = await line(page, plot, 'lte-a');
      assert.ok(l.n > 0, `${plot} plot has lte-a data`);
    }
    assert.equal((await page.$$('#paths tr')).length, 3, 'three paths in the table');
    assert.equal((await page.$$('#sessions tr')).length, 1, 'one session in the table');
  });

  test('a carrier blackout appears on the timeline and the plots, then its recovery; a screenshot is kept', async () => {
    await blackout(carrierNs, true);
    try {
      await page.waitForSelector('#timeline li[data-kind="path.down"][data-path="lte-a"]', { timeout: 20_000 });
      // A vertical line has an empty bounding box: Playwright calls it hidden, so wait for it attached.
      await page.waitForSelector('svg[data-plot="throughput"] line[data-marker="path.down"]', { state: 'attached', timeout: 5_000 });
      assert.equal(await page.textContent('#paths tr[data-path="lte-a"] td:nth-child(3)'), 'down');
      await page.waitForFunction(() => document.querySelector('#sessions tr td:nth-child(4)') !== null, undefined, { timeout: 5_000 });
      assert.equal(await page.textContent('#sessions tr td:nth-child(4)'), '2/3', 'the session counts two paths up');
      await page.waitForTimeout(1500);
      await mkdir(ARTIFACTS, { recursive: true });
      const file = join(ARTIFACTS, 'dashboard.png');
      await page.screenshot({ path: file, fullPage: true });
      assert.ok(existsSync(file));
    } finally {
      await blackout(carrierNs, false);
    }
    await page.waitForSelector('#timeline li[data-kind="path.recovered"][data-path="lte-a"]', { timeout: 20_000 });
  });

  test('the demo still ends by itself with every transfer intact', async () => {
    const code = await demoExit;
    assert.equal(code, 0, stderr.slice(-3000));
    const summary = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { transferOk?: boolean; errors?: string[] };
    assert.equal(summary.transferOk, true, `demo summary: ${stdout}`);
  });
});
