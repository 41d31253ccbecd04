// Public surface of @braid/gateway-core. Each area re-exports its own module; see docs/architecture.md.
export * from './log.js';
