#!/usr/bin/env node
// braid-edge --config edge.yaml
import { loadEdgeConfig, runMain, withNodeCarriers } from '@braid/gateway-core';
import { EdgeGateway } from './edge.js';
import { VERSION } from './version.js';

await runMain({ role: 'edge', version: VERSION, load: loadEdgeConfig, create: (cfg, log) => withNodeCarriers(cfg, log, (c) => new EdgeGateway(c, log)) });
