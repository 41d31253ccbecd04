// Request/response traffic for latency: small messages at a fixed rate over one TCP connection,
// echoed by the server; the client times each message from its send to the end of its echo.
// TCP (not UDP) so that every system can carry it, kernel MPTCP included (run under mptcpize);
// a message is lost when its echo has not come back by the end of the run plus a grace period.
//
//   node --import tsx bench/lib/rr.ts server HOST PORT
//   node --import tsx bench/lib/rr.ts client HOST PORT SIZE_B RATE_HZ DURATION_S [START_EPOCH_MS]
//
// START_EPOCH_MS: connect at once, send the first message at that wall-clock time (Date.now()),
// so that the run lines up with the other traffic whatever Node's start-up took.
// The server prints "listening" when ready; the client prints one JSON RrReport line on stdout.
import { createServer, connect, type Socket } from 'node:net';
import { percentile } from './stats.js';

export interface RrReport {
  sent: number;
  answered: number;
  lost: number;
  latencyMs: { p50: number; p99: number } | null;
  /** Payload bytes (request + echo) of answered messages per 100 ms bin since the first send. */
  bins: number[];
  /** Set when the client could not connect or the connection broke. */
  error?: string;
}

export const RR_HEADER_B = 16;
const GRACE_MS = 2000;
const BIN_MS = 100;

function serve(host: string, port: number): void {
  const server = createServer((sock) => {
    sock.setNoDelay(true);
    sock.on('error', () => sock.destroy());
    sock.pipe(sock); // an echo: the client frames and times the messages
  });
  server.listen(port, host, () => process.stdout.write(`rr server listening on ${host}:${port}\n`));
  const stop = (): void => {
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function connectWithRetry(host: string, port: number, deadlineMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = connect({ host, port });
      s.once('connect', () => {
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err) => {
        s.destroy();
        if (Date.now() > deadlineMs) reject(err);
        else setTimeout(attempt, 200);
      });
    };
    attempt();
  });
}

async function client(host: string, port: number, sizeB: number, rateHz: number, durationS: number, startEpochMs: number): Promise<RrReport> {
  const report: RrReport = { sent: 0, answered: 0, lost: 0, latencyMs: null, bins: [] };
  let sock: Socket;
  try {
    sock = await connectWithRetry(host, port, Date.now() + 5000);
  } catch (err) {
    return { ...report, error: `connect ${host}:${port}: ${(err as Error).message}` };
  }
  sock.setNoDelay(true);
  const wait = startEpochMs - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  const t0 = performance.now();
  let pending: Buffer = Buffer.alloc(0);
  let broken: string | undefined;
  sock.on('error', (err) => {
    broken = err.message;
  });
  sock.on('data', (chunk: Buffer) => {
    const now = performance.now();
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= sizeB) {
      const seq = pending.readUInt32BE(0);
      pending = pending.subarray(sizeB);
      const at = sentAt.get(seq);
      if (at === undefined) continue;
      sentAt.delete(seq);
      latencies.push(now - at);
      report.answered++;
      const bin = Math.floor((now - t0) / BIN_MS);
      while (report.bins.length <= bin) report.bins.push(0);
      report.bins[bin]! += 2 * sizeB;
    }
  });

  const total = Math.max(1, Math.round(durationS * rateHz));
  const msg = Buffer.alloc(sizeB);
  await new Promise<void>((resolve) => {
    // Messages are due at fixed times; a late timer sends the overdue ones at once.
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rateHz) + 1);
      while (report.sent < due && !broken) {
        msg.writeUInt32BE(report.sent, 0);
        msg.writeDoubleBE(Date.now(), 4);
        sentAt.set(report.sent, performance.now());
        sock.write(Buffer.from(msg));
        report.sent++;
      }
      if (report.sent >= total || broken) resolve();
      else setTimeout(tick, Math.max(1, Math.min(20, 1000 / rateHz / 2)));
    };
    tick();
  });
  const deadline = performance.now() + GRACE_MS;
  while (sentAt.size > 0 && performance.now() < deadline && !broken) await new Promise((r) => setTimeout(r, 20));
  sock.destroy();
  // The bins cover the whole run even when its tail was silent.
  const runBins = Math.ceil((durationS * 1000) / BIN_MS);
  while (report.bins.length < runBins) report.bins.push(0);
  report.lost = report.sent - report.answered;
  if (latencies.length) {
    latencies.sort((a, b) => a - b);
    report.latencyMs = { p50: round2(percentile(latencies, 50)), p99: round2(percentile(latencies, 99)) };
  }
  if (broken) report.error = `connection broke: ${broken}`;
  return report;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function num(v: string | undefined, what: string): number {
  const n = Number(v);
  if (v === undefined || !Number.isFinite(n) || n <= 0) {
    process.stderr.write(`rr: ${what} must be a positive number, got ${v}\n`);
    process.exit(2);
  }
  return n;
}

// A script, not a library: import only its types (`import type`), which do not run it.
{
  const [mode, host, port, size, rate, dur, start] = process.argv.slice(2);
  if (mode === 'server' && host) {
    serve(host, num(port, 'PORT'));
  } else if (mode === 'client' && host) {
    const sizeB = Math.max(RR_HEADER_B, Math.round(num(size, 'SIZE_B')));
    void client(host, num(port, 'PORT'), sizeB, num(rate, 'RATE_HZ'), num(dur, 'DURATION_S'), start === undefined ? 0 : num(start, 'START_EPOCH_MS')).then((r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    });
  } else {
    process.stderr.write('usage: rr.ts server HOST PORT | rr.ts client HOST PORT SIZE_B RATE_HZ DURATION_S [START_EPOCH_MS]\n');
    process.exit(2);
  }
}
