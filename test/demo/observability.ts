// The demo's window on telemetry. The gateways run in network namespaces, whose 127.0.0.1 is
// not the host's; the demo joins them (test/harness/forward.ts, Unix sockets):
//   - OTLP out: when an OTEL_EXPORTER_OTLP_*ENDPOINT the demo was started with points at the
//     host's loopback, the same host:port is made to work inside the edge and cloud namespaces,
//     so the gateways, which inherit the demo's OTEL_* variables, reach the host's collector
//     with the URL unchanged (any protocol: http/protobuf, http/json, grpc; it is plain TCP).
//   - Dashboards in: each gateway's admin endpoint (dashboard, /metrics, /events) is forwarded
//     to the host's loopback: 127.0.0.1:9464 (edge) and :9465 (cloud) when free, else any port.
import { EDGE_ADMIN, CLOUD_ADMIN } from '../harness/gateways.js';
import { bridgeIntoNamespace, exposeFromNamespace, type Bridge } from '../harness/forward.js';
import type { Topology } from '../harness/topology.js';

const OTLP_VARS = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT', 'OTEL_EXPORTER_OTLP_LOGS_ENDPOINT'];

/** Ports of OTLP endpoints on the host's loopback named by the environment. */
export function loopbackOtlpPorts(env: NodeJS.ProcessEnv): number[] {
  const ports = new Set<number>();
  for (const k of OTLP_VARS) {
    const v = env[k]?.trim();
    if (!v) continue;
    try {
      const u = new URL(v);
      if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) continue;
      const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
      if (port > 0) ports.add(port);
    } catch {
      // not a URL: the gateways will say so
    }
  }
  return [...ports];
}

export interface DemoObservability {
  /** Lines to show the user (dashboard addresses, OTLP forwarding). */
  lines: string[];
  edgeDashboard: string | undefined;
  exposeDashboards(): Promise<void>;
  close(): Promise<void>;
}

export async function startDemoObservability(topo: Topology, dir: string, log: (msg: string) => void): Promise<DemoObservability> {
  const bridges: Bridge[] = [];
  const lines: string[] = [];
  const ports = loopbackOtlpPorts(process.env);
  for (const port of ports) {
    for (const ns of [topo.ns.edge, topo.ns.cloud]) {
      bridges.push(await bridgeIntoNamespace(topo, ns, { hostPort: port, nsPort: port, dir }));
    }
  }
  if (ports.length > 0) {
    const line = `OTLP: gateways export to the host's 127.0.0.1:${ports.join(', ')} (forwarded into their namespaces)`;
    lines.push(line);
    log(line);
  }
  const obs: DemoObservability = {
    lines,
    edgeDashboard: undefined,
    async exposeDashboards(): Promise<void> {
      for (const [side, listen] of [['edge', EDGE_ADMIN], ['cloud', CLOUD_ADMIN]] as const) {
        const nsPort = Number(listen.split(':')[1]);
        const ns = side === 'edge' ? topo.ns.edge : topo.ns.cloud;
        let b: Bridge;
        try {
          b = await exposeFromNamespace(topo, ns, { nsPort, hostPort: nsPort, dir });
        } catch {
          b = await exposeFromNamespace(topo, ns, { nsPort, hostPort: 0, dir }); // the usual port is taken
        }
        bridges.push(b);
        const url = `http://127.0.0.1:${b.port}/dashboard`;
        if (side === 'edge') obs.edgeDashboard = url;
        const line = `${side} dashboard: ${url} (also /metrics, /events, /status)`;
        lines.push(line);
        log(line);
      }
    },
    async close(): Promise<void> {
      for (const b of bridges.splice(0).reverse()) await b.close().catch(() => undefined);
    },
  };
  return obs;
}
