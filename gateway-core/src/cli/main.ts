// The shared command line of both gateways: `--config FILE`, clear errors for bad input
// (exit code 2), structured logs, and an orderly stop on SIGINT/SIGTERM that removes the
// routes and rules the gateway installed.
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/index.js';
import { createLogger, type Logger } from '../log.js';

export interface Gateway {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface MainSpec<C extends { log: { level: string; pretty: boolean } }> {
  role: 'edge' | 'cloud';
  version: string;
  load(file: string): C;
  create(cfg: C, log: Logger): Gateway;
}

export async function runMain<C extends { log: { level: string; pretty: boolean } }>(spec: MainSpec<C>, argv = process.argv.slice(2)): Promise<void> {
  const usage = `usage: braid-${spec.role} --config FILE\n\n  --config FILE   YAML configuration (see docs/configuration.md)\n  --version       print the version\n  --help          this text\n`;
  let values: { config?: string; help?: boolean; version?: boolean };
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } } }));
  } catch (e) {
    process.stderr.write(`braid-${spec.role}: ${(e as Error).message}\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(usage);
    return;
  }
  if (values.version) {
    process.stdout.write(`${spec.version}\n`);
    return;
  }
  if (!values.config) {
    process.stderr.write(`braid-${spec.role}: --config FILE is required\n${usage}`);
    process.exit(2);
  }
  let cfg: C;
  try {
    cfg = spec.load(values.config);
  } catch (e) {
    process.stderr.write(`braid-${spec.role}: invalid configuration\n${e instanceof ConfigError ? e.message : (e as Error).message}\n`);
    process.exit(2);
  }
  const log = createLogger({ level: cfg.log.level, pretty: cfg.log.pretty, name: `braid-${spec.role}` });
  const gw = spec.create(cfg, log);
  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: sig }, 'stopping');
    gw.stop().then(() => process.exit(0), (e: Error) => {
      log.error({ err: e.message }, 'stop failed');
      process.exit(1);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  try {
    await gw.start();
  } catch (e) {
    log.fatal({ err: (e as Error).message }, `${spec.role} failed to start`);
    await gw.stop().catch(() => undefined);
    process.exit(1);
  }
}
