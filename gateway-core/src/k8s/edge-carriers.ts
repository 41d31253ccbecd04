// Wiring of readNodeCarriers() for the edge: before the edge starts, its carriers' metadata is
// taken from its Node's annotations when the pod may read them (the chart mounts a service-account
// token only with edge.readNodeAnnotations, and sets NODE_NAME), else from edge.yaml as it is.
import type { Gateway } from '../cli/main.js';
import type { CarrierConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { clientNodeNodeSource, inClusterKubeConfig } from './api.js';
import { readNodeCarriers, type NodeSource } from './node-carriers.js';

export interface NodeCarrierOptions {
  /** The API; default: the in-cluster one when a token is mounted, none otherwise. */
  source?: NodeSource;
  nodeName?: string;
  /** Give up on the API after this long (an unreachable API server must not hold the edge back). */
  timeoutMs?: number;
}

/** A gateway whose carriers are read from the node first; `make` builds the real one from them. */
export function withNodeCarriers<C extends { carriers: CarrierConfig[] }>(
  cfg: C, log: Logger, make: (cfg: C) => Gateway, o: NodeCarrierOptions = {},
): Gateway {
  let inner: Gateway | undefined;
  return {
    async start() {
      const source = o.source ?? defaultSource(log);
      const nodeName = o.nodeName ?? (process.env.NODE_NAME || undefined);
      const timeoutMs = o.timeoutMs ?? 5000;
      const timed: NodeSource | undefined = source && {
        getNode: async (name) => {
          let timer: NodeJS.Timeout | undefined;
          try {
            return await Promise.race([
              source.getNode(name),
              new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs); }),
            ]);
          } finally {
            clearTimeout(timer);
          }
        },
      };
      const r = await readNodeCarriers(cfg.carriers, nodeName, timed, log);
      log.info({ from: r.from, reason: r.reason, node: nodeName, ignored: r.ignored.length }, r.from === 'node' ? 'carrier metadata from node annotations' : 'carrier metadata from edge.yaml');
      inner = make({ ...cfg, carriers: r.carriers });
      await inner.start();
    },
    async stop() {
      await inner?.stop();
    },
  };
}

function defaultSource(log: Logger): NodeSource | undefined {
  try {
    const kc = inClusterKubeConfig();
    return kc ? clientNodeNodeSource(kc) : undefined;
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'in-cluster Kubernetes config unusable');
    return undefined;
  }
}
