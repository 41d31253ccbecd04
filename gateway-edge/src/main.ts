#!/usr/bin/env node
// braid-edge --config edge.yaml
import { loadEdgeConfig, runMain } from '@braid/gateway-core';
import { EdgeGateway } from './edge.js';
import { VERSION } from './version.js';

await runMain({ role: 'edge', version: VERSION, load: loadEdgeConfig, create: (cfg, log) => new EdgeGateway(cfg, log) });
