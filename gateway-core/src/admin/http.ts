// The gateway's local admin endpoint: status as JSON for people and the demo, and probes on
// distinct paths (/livez: the process is responsive; /readyz: it carries traffic; /startupz:
// start-up finished) so Kubernetes can tell them apart. With telemetry it also serves
// /metrics (Prometheus), the event timeline (/events), recent samples (/history), a live feed
// of both as server-sent events (/feed) and the dashboard page that draws them (/dashboard).
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EventLog } from '../telemetry/events.js';
import type { SampleHistory } from '../telemetry/history.js';

export interface AdminTelemetry {
  /** Prometheus text exposition; absent when disabled. */
  prometheus?: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined;
  events: EventLog;
  history: SampleHistory;
  /** Serve /dashboard, /history and /feed. */
  dashboard: boolean;
}

export interface AdminHandlers {
  status(): unknown;
  ready(): boolean;
  started(): boolean;
  telemetry?: AdminTelemetry | undefined;
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

const ENDPOINTS = '/status, /livez, /readyz, /startupz, /metrics, /events, /history, /feed, /dashboard';

/** The dashboard page: read from src/dashboard (tsx) or next to dist/ (built), cached once found. */
let page: Promise<string> | undefined;
function dashboardPage(): Promise<string> {
  page ??= (async () => {
    const candidates = [new URL('../dashboard/index.html', import.meta.url), new URL('../../src/dashboard/index.html', import.meta.url)];
    for (const u of candidates) {
      try {
        return await readFile(u, 'utf8');
      } catch {
        // try the next place
      }
    }
    page = undefined;
    throw new Error('dashboard/index.html not found');
  })();
  return page;
}

/** Server-sent events: the history and timeline so far, then each new sample and event. */
function feed(req: http.IncomingMessage, res: http.ServerResponse, h: AdminHandlers, t: AdminTelemetry): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
  const send = (event: string, data: unknown): void => {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  send('hello', { status: h.status(), history: t.history.list(), events: t.events.list() });
  const offSample = t.history.subscribe((s) => send('sample', s));
  const offEvent = t.events.subscribe((e) => send('event', e));
  // Sessions change rarely; a status every few seconds keeps the page's session table fresh.
  const timer = setInterval(() => send('status', h.status()), 5000);
  timer.unref();
  const end = (): void => {
    offSample();
    offEvent();
    clearInterval(timer);
  };
  req.once('close', end);
  res.once('close', end);
}

export async function startAdminServer(host: string, port: number, h: AdminHandlers): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const send = (code: number, body: unknown, type = 'application/json'): void => {
      const text = type === 'application/json' ? JSON.stringify(body) : String(body);
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(text);
    };
    if (req.method !== 'GET') return send(405, { error: 'only GET' });
    const t = h.telemetry;
    switch (path) {
      case '/status':
        return send(200, h.status());
      case '/livez':
        return send(200, 'ok\n', 'text/plain');
      case '/readyz':
        return h.ready() ? send(200, 'ready\n', 'text/plain') : send(503, 'not ready\n', 'text/plain');
      case '/startupz':
        return h.started() ? send(200, 'started\n', 'text/plain') : send(503, 'starting\n', 'text/plain');
      case '/metrics':
        if (!t?.prometheus) return send(404, { error: 'Prometheus metrics are disabled (telemetry.prometheus: false)' });
        return t.prometheus(req, res);
      case '/events': {
        if (!t) return send(404, { error: 'telemetry is off' });
        const after = Number(url.searchParams.get('after') ?? 0);
        const limit = Number(url.searchParams.get('limit') ?? t.events.capacity);
        return send(200, { events: t.events.list(Number.isFinite(after) ? after : 0, Number.isFinite(limit) && limit > 0 ? limit : t.events.capacity) });
      }
      case '/history':
        if (!t?.dashboard) return send(404, { error: 'the dashboard is disabled (telemetry.dashboard: false)' });
        return send(200, { samples: t.history.list() });
      case '/feed':
        if (!t?.dashboard) return send(404, { error: 'the dashboard is disabled (telemetry.dashboard: false)' });
        return feed(req, res, h, t);
      case '/':
      case '/dashboard':
        if (!t?.dashboard) return send(404, { error: 'the dashboard is disabled (telemetry.dashboard: false)' });
        dashboardPage().then((html) => send(200, html, 'text/html; charset=utf-8'), (e: Error) => send(500, { error: e.message }));
        return;
      default:
        return send(404, { error: `no such endpoint ${path}; try ${ENDPOINTS}` });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
