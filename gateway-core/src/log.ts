// Structured JSON logging (pino) shared by both gateways. `pretty` gives one readable line per
// event for the demo and for people watching a terminal.
import { pino, type Logger } from 'pino';

export type { Logger };

export interface LogOptions {
  level?: string;
  pretty?: boolean;
  name?: string;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? process.env.BRAID_LOG_LEVEL ?? 'info';
  if (opts.pretty) {
    // A tiny pretty printer: avoids a pino-pretty worker thread in the demo.
    return pino({ level, name: opts.name, base: undefined, timestamp: false }, {
      write(line: string) {
        try {
          const o = JSON.parse(line) as Record<string, unknown>;
          const { level: lv, msg, name, ...rest } = o;
          const extra = Object.keys(rest).length > 0 ? ' ' + JSON.stringify(rest) : '';
          process.stderr.write(`[${String(name ?? 'braid')}] ${pino.levels.labels[Number(lv)] ?? lv} ${String(msg ?? '')}${extra}\n`);
        } catch {
          process.stderr.write(line);
        }
      },
    });
  }
  return pino({ level, name: opts.name }, pino.destination(2));
}

/** A logger that drops everything: for unit tests and library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
