// S2-5 context from ModemManager: per carrier, the operator, MCC/MNC, access technology, serving
// cell and RSRP/RSRQ/SINR of the modem behind the carrier's interface. Polls mmcli:
//
//   mmcli -L --output-json                      the modems
//   mmcli -m N --signal-setup=<secs>            once per modem: extended signal polling on
//   mmcli -m N --output-json                    operator, technology, ports
//   mmcli -m N --signal-get --output-json       RSRP/RSRQ/SINR
//   mmcli -m N --location-get --output-json     serving cell id (3GPP location)
//
// A modem belongs to the carrier whose `interface` is one of its "(net)" ports. No mmcli, no
// ModemManager, no modem, a failing call or output that does not parse: one log line when it
// starts (LogOnce), the source keeps polling and reports what it still knows.
import type { Logger } from '../log.js';
import { execRunner, type CommandRunner } from './command.js';
import { Listeners } from './listeners.js';
import { LogOnce } from './log-once.js';
import { MmcliFormatError, parseLocationCellId, parseModem, parseModemList, parseSignal } from './mmcli-parse.js';
import type { ContextSnapshot, ContextSource, RadioContext } from './types.js';

export interface ModemManagerOptions {
  carriers: readonly { name: string; interface: string }[];
  logger: Logger;
  /** Poll period (default 5000 ms); the modem's signal refresh rate is set to match it. */
  pollMs?: number;
  /** The mmcli binary (default "mmcli"). */
  command?: string;
  run?: CommandRunner;
  /** Per-command timeout (default 10000 ms): a hung modem must not stop the loop. */
  timeoutMs?: number;
  now?: () => number;
}

export class ModemManagerSource implements ContextSource {
  readonly name = 'modemmanager';
  private readonly listeners = new Listeners();
  private readonly once: LogOnce;
  private readonly run: CommandRunner;
  private readonly command: string;
  private readonly pollMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  /** Modems whose signal polling is set up (by ModemManager index). */
  private readonly setUp = new Set<string>();
  private radio: RadioContext[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;
  private polling: Promise<void> | undefined;

  constructor(private readonly opts: ModemManagerOptions) {
    this.once = new LogOnce(opts.logger, this.name);
    this.run = opts.run ?? execRunner;
    this.command = opts.command ?? 'mmcli';
    this.pollMs = opts.pollMs ?? 5000;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.pollNow();
    this.schedule();
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      void this.pollNow()
        .catch((e: unknown) => this.opts.logger.error({ source: this.name, err: (e as Error).message }, 'ModemManager poll failed'))
        .finally(() => this.schedule());
    }, this.pollMs);
    this.timer.unref();
  }

  /** One poll of every modem (tests call it directly); concurrent calls share one poll. */
  pollNow(): Promise<void> {
    this.polling ??= this.poll().finally(() => { this.polling = undefined; });
    return this.polling;
  }

  snapshot(): Partial<ContextSnapshot> {
    return { radio: this.radio.map((r) => ({ ...r })) };
  }

  onChange(listener: () => void): () => void {
    return this.listeners.add(listener);
  }

  /** Problems being reported now (each was logged once). */
  get problems(): string[] {
    return this.once.problems;
  }

  /** Stops polling. A poll under way is not waited for (a hung mmcli would hold the edge's stop). */
  stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    return Promise.resolve();
  }

  /** Runs `mmcli args`; undefined (and one log line) when it cannot run or fails. */
  private async mmcli(key: string, args: string[]): Promise<string | undefined> {
    let r;
    try {
      r = await this.run(this.command, args, this.timeoutMs);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      this.once.problem('missing', err.code === 'ENOENT'
        ? `mmcli not found ("${this.command}"): no ModemManager context (install modemmanager, or drop "modemmanager" from context.sources)`
        : `mmcli could not be run: ${err.message}`);
      return undefined;
    }
    this.once.resolved('missing', 'mmcli is available again');
    if (r.code !== 0) {
      this.once.problem(key, `${this.command} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim().split('\n')[0] ?? ''}`.trim());
      return undefined;
    }
    this.once.resolved(key);
    return r.stdout;
  }

  /** Parses with `parse`; a MmcliFormatError is logged once under `key`. */
  private parsed<T>(key: string, parse: () => T): T | undefined {
    try {
      const v = parse();
      this.once.resolved(`${key}:format`);
      return v;
    } catch (e) {
      if (!(e instanceof MmcliFormatError)) throw e;
      this.once.problem(`${key}:format`, `unexpected mmcli output, ignored: ${e.message}`);
      return undefined;
    }
  }

  private async poll(): Promise<void> {
    const listText = await this.mmcli('list', ['-L', '--output-json']);
    const ids = listText === undefined ? undefined : this.parsed('list', () => parseModemList(listText));
    if (ids === undefined) return this.update([]);
    if (ids.length === 0) {
      this.once.problem('none', 'ModemManager reports no modems: no radio context until one appears');
      return this.update([]);
    }
    this.once.resolved('none', `ModemManager reports ${ids.length} modem(s)`);
    const radio: RadioContext[] = [];
    for (const id of ids) {
      const r = await this.readModem(id);
      if (r) radio.push(r);
    }
    this.update(radio);
  }

  private async readModem(id: string): Promise<RadioContext | undefined> {
    if (!this.setUp.has(id)) {
      // Extended signal values are only refreshed while polling is set up on the modem.
      const secs = Math.max(1, Math.round(this.pollMs / 1000));
      if (await this.mmcli(`setup:${id}`, ['-m', id, `--signal-setup=${secs}`]) !== undefined) this.setUp.add(id);
    }
    const modemText = await this.mmcli(`modem:${id}`, ['-m', id, '--output-json']);
    const modem = modemText === undefined ? undefined : this.parsed(`modem:${id}`, () => parseModem(modemText, id));
    if (!modem) return undefined;
    const carrier = this.opts.carriers.find((c) => modem.netPorts.includes(c.interface));
    if (!carrier) {
      this.once.problem(`unmatched:${id}`, `modem ${id} (net ports: ${modem.netPorts.join(', ') || 'none'}) is no carrier's interface: ignored`);
      return undefined;
    }
    this.once.resolved(`unmatched:${id}`);
    const out: RadioContext = { carrier: carrier.name, atMs: this.now() };
    if (modem.operatorName !== undefined) out.operatorName = modem.operatorName;
    if (modem.mcc !== undefined) out.mcc = modem.mcc;
    if (modem.mnc !== undefined) out.mnc = modem.mnc;
    if (modem.technology !== undefined) out.technology = modem.technology;
    const signalText = await this.mmcli(`signal:${id}`, ['-m', id, '--signal-get', '--output-json']);
    const signal = signalText === undefined ? undefined : this.parsed(`signal:${id}`, () => parseSignal(signalText, id, modem.technology));
    Object.assign(out, signal);
    const locText = await this.mmcli(`location:${id}`, ['-m', id, '--location-get', '--output-json']);
    const cellId = locText === undefined ? undefined : this.parsed(`location:${id}`, () => parseLocationCellId(locText, id));
    if (cellId !== undefined) out.cellId = cellId;
    return out;
  }

  private update(radio: RadioContext[]): void {
    const key = (rs: RadioContext[]) => JSON.stringify(rs.map(({ atMs: _, ...r }) => r));
    const changed = key(radio) !== key(this.radio);
    this.radio = radio;
    if (changed) this.listeners.emit((e) => this.opts.logger.error({ err: (e as Error).message }, 'context listener failed'));
  }
}
