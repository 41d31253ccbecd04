// Edge-to-edge carrier sharing over the S1 rendezvous (docs/rendezvous.md, "Carrier sharing").
export * from './config.js';
export * from './lender.js';
export * from './borrower.js';
export * from './edge.js';
