#!/usr/bin/env node
// braid-edge --config edge.yaml
import { loadEdgeConfig, MultiPopEdge, runMain, withNodeCarriers } from '@braid/gateway-core';
import { EdgeGateway } from './edge.js';
import { VERSION } from './version.js';

await runMain({
  role: 'edge', version: VERSION, load: loadEdgeConfig,
  // With `pops`, one gateway per PoP and each destination through the nearest (docs/multi-pop.md).
  create: (cfg, log) => withNodeCarriers(cfg, log, (c) => (c.pops.length > 0
    ? new MultiPopEdge(c, log, (pc, pop) => new EdgeGateway(pc, log.child({ pop })))
    : new EdgeGateway(c, log))),
});
