// The one place that runs `ip`, `tc`, `nft` and `sysctl` for the test harness. Everything above
// this file (topology, apps, gateways, demo) speaks in namespaces and interfaces, never in argv.
import { spawn, spawnSync } from 'node:child_process';

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit code; -1 when the process was killed (timeout) or could not start. */
  code: number;
}

export interface ExecOptions {
  /** Do not throw on a non-zero exit; the caller inspects `code`. */
  allowFailure?: boolean;
  /** Kill the command after this many milliseconds (default 30 s): every harness command is bounded. */
  timeoutMs?: number;
  /** Written to the command's stdin. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kills the command (SIGKILL) when aborted; the promise then rejects unless allowFailure. */
  signal?: AbortSignal;
}

export class CommandError extends Error {
  constructor(readonly argv: string[], readonly result: ExecResult) {
    super(`command failed (${result.code}): ${argv.join(' ')}\n${result.stderr.trim() || result.stdout.trim()}`);
    this.name = 'CommandError';
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** Runs argv (no shell) with a time limit; resolves with its output, throws CommandError on failure. */
export function run(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('run: empty argv');
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      // Own process group: a Ctrl-C in the terminal reaches the harness, which decides when its
      // commands end, instead of killing them mid-transfer behind its back.
      detached: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let note = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const kill = (why: string): void => {
      note ||= why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill(`(killed after ${timeoutMs} ms)`), timeoutMs);
    const onAbort = (): void => kill('(aborted)');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();
    let spawnError = '';
    child.on('error', (e) => { spawnError = e.message; });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      const stderr = Buffer.concat(err).toString('utf8') + (spawnError ? `${spawnError}\n` : '') + (note ? `\n${note}` : '');
      const code = exitCode === null || spawnError || note ? (exitCode || -1) : exitCode;
      const result = { stdout: Buffer.concat(out).toString('utf8'), stderr, code };
      if (code !== 0 && !opts.allowFailure) reject(new CommandError(argv, result));
      else resolve(result);
    });
    child.stdin.on('error', () => undefined); // a command that exits without reading its input
    child.stdin.end(opts.input);
  });
}

/** argv prefix that runs a program inside a named network namespace. */
export function inNs(ns: string, argv: string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv];
}

export function execIn(ns: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return run(inNs(ns, argv), opts);
}

/** `ip -n NS ...` (or plain `ip ...` when ns is null). */
export function ip(ns: string | null, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return run(ns === null ? ['ip', ...args] : ['ip', '-n', ns, ...args], opts);
}

export function tc(ns: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return run(['tc', '-n', ns, ...args], opts);
}

/** Loads an nft script (`nft -f -`) inside the namespace. */
export function nft(ns: string, script: string, opts: ExecOptions = {}): Promise<ExecResult> {
  return execIn(ns, ['nft', '-f', '-'], { ...opts, input: script });
}

export async function sysctl(ns: string, settings: Record<string, string | number>): Promise<void> {
  const args = Object.entries(settings).map(([k, v]) => `${k}=${v}`);
  await execIn(ns, ['sysctl', '-q', '-w', ...args]);
}

// --- namespaces -----------------------------------------------------------------------------

export async function listNamespaces(): Promise<string[]> {
  const r = await run(['ip', '-j', 'netns', 'list'], { allowFailure: true });
  if (r.code !== 0 || r.stdout.trim() === '') return [];
  return (JSON.parse(r.stdout) as { name: string }[]).map((n) => n.name);
}

export async function addNamespace(name: string): Promise<void> {
  await run(['ip', 'netns', 'add', name]);
  await ip(name, ['link', 'set', 'lo', 'up']);
}

/**
 * Kills every process still inside the namespace, then deletes it. Killing first matters: a
 * process left inside keeps the namespace alive after its name is gone, invisible to `ip netns`.
 */
export async function deleteNamespace(name: string): Promise<void> {
  const pids = await run(['ip', 'netns', 'pids', name], { allowFailure: true });
  for (const pid of parsePids(pids.stdout)) killQuietly(pid, 'SIGKILL');
  await run(['ip', 'netns', 'del', name], { allowFailure: true });
}

/** Synchronous variant for `process.on('exit')`, where nothing asynchronous runs any more. */
export function deleteNamespaceSync(name: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8', timeout: 5000 });
  for (const pid of parsePids(pids.stdout ?? '')) killQuietly(pid, 'SIGKILL');
  spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: 5000 });
}

function parsePids(text: string): number[] {
  return text.split('\n').map((l) => Number.parseInt(l.trim(), 10)).filter((n) => Number.isInteger(n) && n > 0);
}

export function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

// --- links, addresses, routes ---------------------------------------------------------------

/** A veth pair with one end in each namespace, both ends up. Names are per namespace (<= 15 chars). */
export async function addVethPair(nsA: string, ifA: string, nsB: string, ifB: string): Promise<void> {
  for (const n of [ifA, ifB]) if (n.length > 15) throw new Error(`interface name too long: ${n}`);
  await ip(nsA, ['link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
  await ip(nsA, ['link', 'set', ifA, 'up']);
  await ip(nsB, ['link', 'set', ifB, 'up']);
}

export async function addDummy(ns: string, dev: string): Promise<void> {
  await ip(ns, ['link', 'add', dev, 'type', 'dummy']);
  await ip(ns, ['link', 'set', dev, 'up']);
}

export async function addAddress(ns: string, dev: string, cidr: string): Promise<void> {
  // `replace` keeps this idempotent, so bringing a carrier back up can simply call it again.
  await ip(ns, ['addr', 'replace', cidr, 'dev', dev]);
}

export async function setLink(ns: string, dev: string, state: 'up' | 'down'): Promise<void> {
  await ip(ns, ['link', 'set', dev, state]);
}

export interface RouteSpec {
  to: string;
  via?: string;
  dev?: string;
  metric?: number;
}

export async function replaceRoute(ns: string, r: RouteSpec): Promise<void> {
  const args = ['route', 'replace', r.to];
  if (r.via !== undefined) args.push('via', r.via);
  if (r.dev !== undefined) args.push('dev', r.dev);
  if (r.metric !== undefined) args.push('metric', String(r.metric));
  await ip(ns, args);
}

// --- shaping ------------------------------------------------------------------------------

export interface TbfSpec {
  rateMbit: number;
  /** Queue that may build up before tbf drops, expressed as time at the rate (default 50 ms). */
  queueMs?: number;
}

/**
 * tbf sizes: the bucket must hold at least one timer tick of traffic at the rate (HZ may be
 * 100) and at least a few full-size frames, or tbf falls short of its rate; the queue limit is
 * queueMs worth of bytes at the rate on top of the burst, like `tc ... latency`.
 */
export function tbfParams(spec: TbfSpec): { rate: string; burstBytes: number; limitBytes: number } {
  const bytesPerSec = (spec.rateMbit * 1e6) / 8;
  const burstBytes = Math.max(4 * 1514, Math.ceil(bytesPerSec / 100));
  const limitBytes = Math.max(2 * 1514, Math.ceil((bytesPerSec * (spec.queueMs ?? 50)) / 1000)) + burstBytes;
  return { rate: `${spec.rateMbit}mbit`, burstBytes, limitBytes };
}

export async function setTbf(ns: string, dev: string, spec: TbfSpec): Promise<void> {
  const p = tbfParams(spec);
  await tc(ns, ['qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', p.rate,
    'burst', String(p.burstBytes), 'limit', String(p.limitBytes)]);
}

// --- counters -----------------------------------------------------------------------------

export interface LinkCounters {
  rxBytes: number;
  txBytes: number;
  rxPackets: number;
  txPackets: number;
  rxDropped: number;
  txDropped: number;
}

export async function linkCounters(ns: string, dev: string): Promise<LinkCounters> {
  const r = await ip(ns, ['-s', '-j', 'link', 'show', 'dev', dev]);
  const parsed = JSON.parse(r.stdout) as {
    stats64?: { rx: { bytes: number; packets: number; dropped: number }; tx: { bytes: number; packets: number; dropped: number } };
  }[];
  const s = parsed[0]?.stats64;
  if (!s) throw new Error(`no counters for ${dev} in ${ns}`);
  return {
    rxBytes: s.rx.bytes, txBytes: s.tx.bytes, rxPackets: s.rx.packets, txPackets: s.tx.packets,
    rxDropped: s.rx.dropped, txDropped: s.tx.dropped,
  };
}
