// Structured JSON logging (pino) shared by both gateways. `pretty` gives one readable line per
// event for the demo and for people watching a terminal.
import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';

export type { Logger };

export interface LogOptions {
  level?: string;
  pretty?: boolean;
  name?: string;
}

/**
 * Adds trace_id/span_id of the active span (OpenTelemetry) to every line logged inside it, so a
 * log line can be found from a trace and the other way round.
 */
export function traceMixin(): Record<string, string> {
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const sc = span.spanContext();
  return isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : {};
}

export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? process.env.BRAID_LOG_LEVEL ?? 'info';
  if (opts.pretty) {
    // A tiny pretty printer: avoids a pino-pretty worker thread in the demo.
    return pino({ level, name: opts.name, base: undefined, timestamp: false, mixin: traceMixin }, {
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
  return pino({ level, name: opts.name, mixin: traceMixin }, pino.destination(2));
}

/** A logger that drops everything: for unit tests and library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
