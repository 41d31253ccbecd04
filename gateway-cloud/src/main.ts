#!/usr/bin/env node
// braid-cloud --config cloud.yaml
import { loadCloudConfig, runMain } from '@braid/gateway-core';
import { CloudGateway } from './cloud.js';

const VERSION = '0.1.0';
await runMain({ role: 'cloud', version: VERSION, load: loadCloudConfig, create: (cfg, log) => new CloudGateway(cfg, log) });
