export * from './header.js';
export * from './aead.js';
export * from './replay.js';
export * from './drops.js';
export * from './codec.js';
