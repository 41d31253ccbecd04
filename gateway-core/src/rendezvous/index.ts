// S1 rendezvous: the cloud's service, the edge's client, and the peer logic that races a direct
// dial against a dial-back and ends with one authenticated connection (docs/rendezvous.md).
export * from './proto.js';
export * from './service.js';
export * from './client.js';
export * from './link.js';
