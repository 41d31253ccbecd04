#!/usr/bin/env node
// The `braid` command (bin of @braid/gateway-core): the built CLI when dist/ exists, otherwise
// the TypeScript source through tsx, so it works in a checkout without a build step.
import { existsSync } from 'node:fs';

const dist = new URL('../dist/cli/braid.js', import.meta.url);
let cli;
if (existsSync(dist)) {
  cli = await import(dist.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(new URL('../src/cli/braid.ts', import.meta.url).href);
}
await cli.main();
