// The gateway's local admin endpoint: status as JSON for people and the demo, and probes on
// distinct paths (/livez: the process is responsive; /readyz: it carries traffic; /startupz:
// start-up finished) so Kubernetes can tell them apart.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AdminHandlers {
  status(): unknown;
  ready(): boolean;
  started(): boolean;
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startAdminServer(host: string, port: number, h: AdminHandlers): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (code: number, body: unknown, type = 'application/json'): void => {
      const text = type === 'application/json' ? JSON.stringify(body) : String(body);
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(text);
    };
    if (req.method !== 'GET') return send(405, { error: 'only GET' });
    switch (path) {
      case '/status':
        return send(200, h.status());
      case '/livez':
        return send(200, 'ok\n', 'text/plain');
      case '/readyz':
        return h.ready() ? send(200, 'ready\n', 'text/plain') : send(503, 'not ready\n', 'text/plain');
      case '/startupz':
        return h.started() ? send(200, 'started\n', 'text/plain') : send(503, 'starting\n', 'text/plain');
      default:
        return send(404, { error: `no such endpoint ${path}; try /status, /livez, /readyz, /startupz` });
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
