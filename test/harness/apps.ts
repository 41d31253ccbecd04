// Real traffic for the topology: nginx serving random files, an upload sink, curl transfers
// checked by sha256, and iperf3. Every command runs for a bounded time.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ManagedProcess } from './process.js';
import type { Topology } from './topology.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

// --- files ----------------------------------------------------------------------------------

/** Writes `bytes` random bytes to dir/name and returns their sha256 (hex). */
export async function makeRandomFile(dir: string, name: string, bytes: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  const hash = createHash('sha256');
  const out = createWriteStream(join(dir, name));
  const chunk = 1024 * 1024;
  for (let left = bytes; left > 0; left -= chunk) {
    const buf = randomBytes(Math.min(chunk, left));
    hash.update(buf);
    if (!out.write(buf)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return hash.digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

// --- nginx ----------------------------------------------------------------------------------

export interface Nginx {
  /** Directory served at / (put files here, e.g. with makeRandomFile). */
  root: string;
  process: ManagedProcess;
  url(file: string, host?: string): string;
  stop(): Promise<void>;
}

/**
 * nginx in the server namespace on both server addresses, port 80, with its own config, pid file,
 * temp dirs and error log under `dir` (nothing touches /etc/nginx or /var/log/nginx).
 */
export async function startNginx(topo: Topology, dir: string, opts: { root?: string } = {}): Promise<Nginx> {
  const root = opts.root ?? join(dir, 'www');
  await mkdir(root, { recursive: true });
  await mkdir(join(dir, 'tmp'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  const listen = [topo.addr.server, topo.addr.serverAlt].map((a) => `    listen ${a}:80;`).join('\n');
  // user root: the workers must read files under a caller's mkdtemp directory (mode 0700).
  await writeFile(conf, `daemon off;
user root;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'nginx-error.log')} warn;
events { worker_connections 512; }
http {
  access_log off;
  sendfile on;
  default_type application/octet-stream;
  client_body_temp_path ${join(dir, 'tmp', 'body')};
  proxy_temp_path ${join(dir, 'tmp', 'proxy')};
  fastcgi_temp_path ${join(dir, 'tmp', 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'tmp', 'uwsgi')};
  scgi_temp_path ${join(dir, 'tmp', 'scgi')};
  server {
${listen}
    root ${root};
  }
}
`);
  // -e: without it nginx opens its compiled-in error log before reading the config.
  const proc = topo.spawn(topo.ns.server, ['nginx', '-p', dir, '-e', join(dir, 'nginx-error.log'), '-c', conf], {
    name: 'nginx', logFile: join(dir, 'nginx.out'),
  });
  const nginx: Nginx = {
    root,
    process: proc,
    url: (file, host = topo.addr.server) => `http://${host}/${file}`,
    stop: () => topo.release(proc),
  };
  await waitForHttp(topo, topo.ns.server, `http://${topo.addr.server}/`, proc, 10_000);
  return nginx;
}

/** Polls a URL from inside ns until it answers any HTTP status (the server is listening). */
async function waitForHttp(topo: Topology, ns: string, url: string, proc: ManagedProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!proc.running) throw new Error(`${proc.name} exited before ${url} answered:\n${proc.tail(20)}`);
    const r = await topo.exec(ns, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '1', url], { allowFailure: true });
    if (r.code === 0 && r.stdout !== '000') return;
    await sleep(100);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms:\n${proc.tail(20)}`);
}

// --- upload sink --------------------------------------------------------------------------

export interface UploadSink {
  process: ManagedProcess;
  url(host?: string): string;
  stop(): Promise<void>;
}

/** The node upload sink (upload-sink.ts) in the server namespace, on every server address. */
export async function startUploadSink(topo: Topology, opts: { port?: number; logFile?: string } = {}): Promise<UploadSink> {
  const port = opts.port ?? 8080;
  const script = fileURLToPath(new URL('./upload-sink.ts', import.meta.url));
  const proc = topo.spawn(topo.ns.server, [process.execPath, '--import', 'tsx', script, '0.0.0.0', String(port)], {
    name: 'upload-sink', cwd: REPO_ROOT, ...(opts.logFile ? { logFile: opts.logFile } : {}),
  });
  await proc.waitFor(/listening/, 15_000);
  return {
    process: proc,
    url: (host = topo.addr.server) => `http://${host}:${port}/upload`,
    stop: () => topo.release(proc),
  };
}

// --- curl ---------------------------------------------------------------------------------

export interface DownloadResult {
  ok: boolean;
  bytes: number;
  sha256: string;
  seconds: number;
  /** curl's exit code and last words when !ok. */
  error?: string;
  aborted?: boolean;
}

export interface DownloadOptions {
  timeoutS?: number;
  /** Called with the size of every chunk as it arrives (live goodput). */
  onBytes?: (n: number) => void;
  /** Stops the transfer early; the result then has ok=false, aborted=true. */
  signal?: AbortSignal;
  /** Namespace to download from (default the client). */
  ns?: string;
}

/** curl in the client namespace; the body streams into sha256 here, never onto disk. */
export async function curlDownload(topo: Topology, url: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const timeoutS = opts.timeoutS ?? 60;
  const hash = createHash('sha256');
  let bytes = 0;
  const started = process.hrtime.bigint();
  const proc = topo.spawn(opts.ns ?? topo.ns.client, ['curl', '-sS', '--fail', '--max-time', String(timeoutS), '-o', '-', url], {
    name: 'curl',
    keepBytes: 16 * 1024,
    onStdout: (chunk) => {
      bytes += chunk.length;
      hash.update(chunk);
      opts.onBytes?.(chunk.length);
    },
  });
  const onAbort = (): void => void proc.stop(500);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // curl's own --max-time bounds it; the extra guard covers a curl that hangs before it starts.
  const guard = setTimeout(() => void proc.stop(500), (timeoutS + 5) * 1000);
  const exit = await proc.exited;
  clearTimeout(guard);
  opts.signal?.removeEventListener('abort', onAbort);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const ok = exit.code === 0;
  const result: DownloadResult = { ok, bytes, sha256: hash.digest('hex'), seconds };
  if (!ok) result.error = `curl exit ${exit.code ?? exit.signal}: ${proc.output().trim()}`;
  if (opts.signal?.aborted) result.aborted = true;
  return result;
}

export interface UploadResult {
  ok: boolean;
  /** Size and hash of the local file. */
  bytes: number;
  sha256: string;
  /** What the sink received. */
  serverBytes: number;
  serverSha256: string;
  seconds: number;
  error?: string;
  aborted?: boolean;
}

/** `curl -T file` from the client to the upload sink; ok when the sink saw exactly the file. */
export async function curlUpload(
  topo: Topology, url: string, file: string, opts: { timeoutS?: number; signal?: AbortSignal; ns?: string } = {},
): Promise<UploadResult> {
  const timeoutS = opts.timeoutS ?? 60;
  const [sha256, st] = await Promise.all([sha256File(file), stat(file)]);
  const started = process.hrtime.bigint();
  const r = await topo.exec(opts.ns ?? topo.ns.client, ['curl', '-sS', '--fail', '--max-time', String(timeoutS), '-T', file, url], {
    allowFailure: true, timeoutMs: (timeoutS + 5) * 1000, ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const result: UploadResult = { ok: false, bytes: st.size, sha256, serverBytes: 0, serverSha256: '', seconds };
  if (opts.signal?.aborted) result.aborted = true;
  if (r.code !== 0) {
    result.error = `curl exit ${r.code}: ${r.stderr.trim()}`;
    return result;
  }
  try {
    const answer = JSON.parse(r.stdout) as { bytes: number; sha256: string };
    result.serverBytes = answer.bytes;
    result.serverSha256 = answer.sha256;
    result.ok = answer.bytes === st.size && answer.sha256 === sha256;
    if (!result.ok) result.error = `sink received ${answer.bytes} bytes, sha256 ${answer.sha256}`;
  } catch {
    result.error = `unexpected sink answer: ${r.stdout.slice(0, 200)}`;
  }
  return result;
}

// --- iperf3 -------------------------------------------------------------------------------

export interface IperfServer {
  host: string;
  port: number;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/** A persistent iperf3 server in the server namespace (one test at a time per port). */
export async function startIperfServer(topo: Topology, opts: { host?: string; port?: number; ns?: string } = {}): Promise<IperfServer> {
  const host = opts.host ?? topo.addr.server;
  const port = opts.port ?? 5201;
  // --idle-timeout: a client killed mid-test would otherwise leave the server stuck for good.
  const proc = topo.spawn(opts.ns ?? topo.ns.server, ['iperf3', '-s', '-B', host, '-p', String(port), '--idle-timeout', '30', '--forceflush'], {
    name: 'iperf3-server', keepBytes: 64 * 1024,
  });
  await proc.waitFor(/Server listening/, 10_000);
  return { host, port, process: proc, stop: () => topo.release(proc) };
}

export interface IperfTcpOptions {
  host?: string;
  port?: number;
  seconds?: number;
  parallel?: number;
  /** Server sends (download direction). */
  reverse?: boolean;
  /** Seconds at the start left out of the result (slow start). */
  omitS?: number;
  ns?: string;
  signal?: AbortSignal;
}

export interface IperfTcpResult {
  /** Receiver-side goodput. */
  mbps: number;
  sentMbps: number;
  retransmits: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- iperf3's JSON report, shape varies by version/mode
  raw: any;
}

export async function iperfTcp(topo: Topology, opts: IperfTcpOptions = {}): Promise<IperfTcpResult> {
  const seconds = opts.seconds ?? 5;
  const argv = ['iperf3', '-c', opts.host ?? topo.addr.server, '-p', String(opts.port ?? 5201), '-t', String(seconds),
    '-P', String(opts.parallel ?? 1), '-O', String(opts.omitS ?? 0), '--json', '--connect-timeout', '3000'];
  if (opts.reverse) argv.push('-R');
  const raw = await runIperf(topo, opts.ns ?? topo.ns.client, argv, seconds + (opts.omitS ?? 0), opts.signal);
  const end = raw.end as { sum_received: { bits_per_second: number }; sum_sent: { bits_per_second: number; retransmits?: number } };
  return {
    mbps: end.sum_received.bits_per_second / 1e6,
    sentMbps: end.sum_sent.bits_per_second / 1e6,
    retransmits: end.sum_sent.retransmits ?? 0,
    raw,
  };
}

export interface IperfUdpOptions {
  host?: string;
  port?: number;
  seconds?: number;
  rateMbit: number;
  reverse?: boolean;
  /** Datagram payload size (default 1200: fits the tunnel with its overhead). */
  lengthB?: number;
  ns?: string;
  signal?: AbortSignal;
}

export interface IperfUdpResult {
  /** Goodput seen by the receiver. */
  mbps: number;
  sentMbps: number;
  bytesReceived: number;
  lostPercent: number;
  lostPackets: number;
  packets: number;
  jitterMs: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- iperf3's JSON report
  raw: any;
}

export async function iperfUdp(topo: Topology, opts: IperfUdpOptions): Promise<IperfUdpResult> {
  const seconds = opts.seconds ?? 5;
  const argv = ['iperf3', '-c', opts.host ?? topo.addr.server, '-p', String(opts.port ?? 5201), '-t', String(seconds),
    '-u', '-b', `${opts.rateMbit}M`, '-l', String(opts.lengthB ?? 1200), '--json', '--connect-timeout', '3000'];
  if (opts.reverse) argv.push('-R');
  const raw = await runIperf(topo, opts.ns ?? topo.ns.client, argv, seconds, opts.signal);
  const end = raw.end as {
    sum: { bits_per_second: number; bytes: number; jitter_ms: number; lost_packets: number; packets: number; lost_percent: number };
    sum_sent?: { bits_per_second: number; bytes: number };
    sum_received?: { bits_per_second: number; bytes: number };
  };
  const received = end.sum_received ?? end.sum;
  return {
    mbps: received.bits_per_second / 1e6,
    sentMbps: (end.sum_sent ?? end.sum).bits_per_second / 1e6,
    bytesReceived: received.bytes,
    lostPercent: end.sum.lost_percent,
    lostPackets: end.sum.lost_packets,
    packets: end.sum.packets,
    jitterMs: end.sum.jitter_ms,
    raw,
  };
}

/**
 * An iperf3 server still finishing the previous test refuses the next one ("the server is busy
 * running a test. try again later"): a test that runs two measurements back to back (upload,
 * then download) met it in CI. Such a refusal is retried, at most BUSY_RETRIES times.
 */
const IPERF_BUSY = /server is busy/i;
const BUSY_RETRIES = 5;
const BUSY_WAIT_MS = 500;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- iperf3's JSON report
async function runIperf(topo: Topology, ns: string, argv: string[], seconds: number, signal?: AbortSignal): Promise<any> {
  for (let attempt = 0; ; attempt++) {
    const r = await topo.exec(ns, argv, {
      allowFailure: true, timeoutMs: (seconds + 20) * 1000, ...(signal ? { signal } : {}),
    });
    let parsed: { error?: string; end?: unknown } | undefined;
    try {
      parsed = JSON.parse(r.stdout) as { error?: string; end?: unknown };
    } catch {
      // fall through: no JSON at all
    }
    if (parsed && !parsed.error && r.code === 0) return parsed;
    const error = parsed?.error ?? (r.stderr.trim() || r.stdout.slice(0, 300));
    if (IPERF_BUSY.test(error) && attempt < BUSY_RETRIES && !signal?.aborted) {
      await sleep(BUSY_WAIT_MS);
      continue;
    }
    throw new Error(`iperf3 failed (${r.code}): ${error}`);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
