export * from './events.js';
export * from './history.js';
export * from './metrics.js';
export * from './path-watch.js';
export * from './telemetry.js';
export * from './view.js';
export type { Context as TraceContext, Span } from '@opentelemetry/api';
