// A real OTLP/HTTP receiver for tests: accepts the JSON encoding (OTEL_EXPORTER_OTLP_PROTOCOL=
// http/json) on /v1/traces and /v1/metrics, keeps what arrived, flattened for assertions.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
type KeyValue = { key: string; value: AnyValue };

export type Attrs = Record<string, string | number | boolean>;

export interface ReceivedSpan {
  service: string;
  resource: Attrs;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Attrs;
  events: { name: string; attributes: Attrs }[];
}

export interface ReceivedPoint {
  service: string;
  resource: Attrs;
  metric: string;
  unit: string;
  attributes: Attrs;
  value: number | null;
}

export interface OtlpReceiver {
  readonly url: string;
  readonly port: number;
  spans: ReceivedSpan[];
  points: ReceivedPoint[];
  requests: { path: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

function attrs(kvs: KeyValue[] | undefined): Attrs {
  const out: Attrs = {};
  for (const kv of kvs ?? []) {
    const v = kv.value ?? {};
    if (v.stringValue !== undefined) out[kv.key] = v.stringValue;
    else if (v.intValue !== undefined) out[kv.key] = Number(v.intValue);
    else if (v.doubleValue !== undefined) out[kv.key] = v.doubleValue;
    else if (v.boolValue !== undefined) out[kv.key] = v.boolValue;
  }
  return out;
}

interface DataPoint { attributes?: KeyValue[]; asDouble?: number; asInt?: string | number; count?: string | number; sum?: number }
interface Metric { name: string; unit?: string; gauge?: { dataPoints: DataPoint[] }; sum?: { dataPoints: DataPoint[] }; histogram?: { dataPoints: DataPoint[] } }
interface Body {
  resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { spans?: {
    traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: KeyValue[]; events?: { name: string; attributes?: KeyValue[] }[];
  }[] }[] }[];
  resourceMetrics?: { resource?: { attributes?: KeyValue[] }; scopeMetrics?: { metrics?: Metric[] }[] }[];
}

export async function startOtlpReceiver(host = '127.0.0.1'): Promise<OtlpReceiver> {
  const r: Omit<OtlpReceiver, 'url' | 'port' | 'close'> = { spans: [], points: [], requests: [] };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.requests.push({ path: req.url ?? '', headers: req.headers });
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      if (!String(req.headers['content-type'] ?? '').includes('json')) {
        res.writeHead(415).end('this test receiver speaks OTLP/HTTP JSON only');
        return;
      }
      let body: Body;
      try {
        body = JSON.parse(raw.toString('utf8')) as Body;
      } catch {
        res.writeHead(400).end('bad json');
        return;
      }
      for (const rs of body.resourceSpans ?? []) {
        const resource = attrs(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) {
          r.spans.push({
            service: String(resource['service.name'] ?? ''), resource, traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId ?? '',
            name: s.name, kind: s.kind, attributes: attrs(s.attributes), events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attrs(e.attributes) })),
          });
        }
      }
      for (const rm of body.resourceMetrics ?? []) {
        const resource = attrs(rm.resource?.attributes);
        for (const sm of rm.scopeMetrics ?? []) for (const m of sm.metrics ?? []) {
          const dps = m.gauge?.dataPoints ?? m.sum?.dataPoints ?? m.histogram?.dataPoints ?? [];
          for (const dp of dps) {
            const value = dp.asDouble ?? (dp.asInt !== undefined ? Number(dp.asInt) : dp.count !== undefined ? Number(dp.count) : null);
            r.points.push({ service: String(resource['service.name'] ?? ''), resource, metric: m.name, unit: m.unit ?? '', attributes: attrs(dp.attributes), value });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(r, {
    port,
    url: `http://${host}:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  });
}
