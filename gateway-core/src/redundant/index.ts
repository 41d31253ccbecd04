// S4: the redundant low-latency class (small, latency-critical traffic: interactive, VoIP,
// games, control). See docs/redundancy.md.
export * from './loss-table.js';
export * from './receiver.js';
export * from './selection.js';
export * from './pacer.js';
export * from './sender.js';
