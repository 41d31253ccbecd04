// The composite context source an edge config asks for (context.sources, in that order).
import { parseHostPort } from '../config/net.js';
import type { Logger } from '../log.js';
import { CompositeSource } from './composite.js';
import type { ContextConfig } from './config.js';
import { EmulatorSource } from './emulator.js';
import { GpsdSource } from './gpsd.js';
import { ModemManagerSource } from './modemmanager.js';
import type { ContextSource } from './types.js';

export function contextFromConfig(cfg: ContextConfig, carriers: readonly { name: string; interface: string }[], logger: Logger): CompositeSource {
  const sources: ContextSource[] = cfg.sources.map((name): ContextSource => {
    switch (name) {
      case 'modemmanager':
        return new ModemManagerSource({ carriers, logger, pollMs: cfg.modemManager.pollMs, command: cfg.modemManager.command });
      case 'gpsd': {
        const { host, port } = parseHostPort(cfg.gpsd);
        return new GpsdSource({ host, port, logger });
      }
      case 'emulator':
        // The schema refuses "emulator" without a file.
        return new EmulatorSource({ file: cfg.emulator.file ?? '', carriers: carriers.map((c) => c.name), logger, pollMs: cfg.emulator.pollMs });
    }
  });
  return new CompositeSource(sources, { logger, staleMs: cfg.staleMs });
}
