// Long-running helper processes (nginx, iperf3 servers, gateways) started by the harness. Each is
// its own process group so that stopping it also stops whatever it forked, and so that a Ctrl-C
// in the terminal reaches only the harness, which then shuts things down in order.
import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { killQuietly } from './netns.js';

export interface SpawnOptions {
  /** Short label used in errors. */
  name?: string;
  /** stdout and stderr are appended to this file as well as kept in memory. */
  logFile?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Bytes of output kept in memory (the tail); default 1 MiB. */
  keepBytes?: number;
  /** Raw stdout goes here instead of the text buffer and log (binary output, e.g. a download). */
  onStdout?: (chunk: Buffer) => void;
}

export class ManagedProcess {
  readonly child: ChildProcess;
  readonly name: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private out = '';
  private readonly keep: number;
  private readonly log: WriteStream | undefined;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly lineWaiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];

  constructor(readonly argv: string[], opts: SpawnOptions = {}) {
    const [file, ...args] = argv;
    if (file === undefined) throw new Error('spawn: empty argv');
    this.name = opts.name ?? argv.join(' ');
    this.keep = opts.keepBytes ?? 1024 * 1024;
    this.log = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
    this.child = spawnChild(file, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    const onData = (chunk: Buffer): void => this.append(chunk.toString('utf8'));
    this.child.stdout?.on('data', opts.onStdout ?? onData);
    this.child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.append(`spawn error: ${err.message}\n`);
        this.exitInfo = { code: -1, signal: null };
        resolve(this.exitInfo);
      });
      // 'exit' can come before the last stdout chunk has been read: resolving there let a
      // download's hash be finalised while curl's tail was still in the pipe. 'close' comes after
      // the pipes are drained; the 2 s fallback covers a grandchild that keeps them open.
      this.child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        setTimeout(() => resolve({ code, signal }), 2000).unref();
      });
      this.child.on('close', (code, signal) => {
        this.exitInfo ??= { code, signal };
        resolve(this.exitInfo);
      });
    });
    void this.exited.then(() => this.log?.end());
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  get exitCode(): number | null | undefined {
    return this.exitInfo?.code;
  }

  /** Everything the process printed so far (the last keepBytes of it). */
  output(): string {
    return this.out;
  }

  tail(lines: number): string {
    return this.out.split('\n').slice(-lines - 1).join('\n');
  }

  /** Resolves when a line of output matches; rejects on exit or after timeoutMs. */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const m = this.out.match(re);
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const waiter = { re, resolve: (mm: RegExpMatchArray) => { clearTimeout(timer); resolve(mm); } };
      const timer = setTimeout(() => {
        this.lineWaiters.splice(this.lineWaiters.indexOf(waiter), 1);
        reject(new Error(`${this.name}: no output matching ${re} within ${timeoutMs} ms\n${this.tail(20)}`));
      }, timeoutMs);
      this.lineWaiters.push(waiter);
      void this.exited.then(() => {
        if (!this.lineWaiters.includes(waiter)) return;
        this.lineWaiters.splice(this.lineWaiters.indexOf(waiter), 1);
        clearTimeout(timer);
        reject(new Error(`${this.name}: exited (${this.exitInfo?.code ?? this.exitInfo?.signal}) before printing ${re}\n${this.tail(20)}`));
      });
    });
  }

  /** SIGTERM to the whole process group, SIGKILL after graceMs; resolves once it has exited. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running || this.child.pid === undefined) return;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    // Anything the leader forked and left behind in its group goes too.
    this.signal('SIGKILL');
  }

  /** For exit handlers: no waiting. */
  killNow(): void {
    this.signal('SIGKILL');
  }

  private signal(sig: NodeJS.Signals): void {
    if (this.child.pid === undefined) return;
    killQuietly(-this.child.pid, sig);
  }

  private append(text: string): void {
    this.log?.write(text);
    this.out += text;
    if (this.out.length > this.keep) this.out = this.out.slice(this.out.length - this.keep);
    for (const w of [...this.lineWaiters]) {
      const m = this.out.match(w.re);
      if (m) {
        this.lineWaiters.splice(this.lineWaiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  }
}
