// Policy (issue 8, "policy down"): the model, the cloud's store with overlays, and what an edge
// does with a policy.
export * from './model.js';
export * from './merge.js';
export * from './store.js';
export * from './apply.js';
export * from './client.js';
export * from './file.js';
