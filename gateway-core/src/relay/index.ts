export * from './frame.js';
export * from './stream.js';
export * from './relay.js';
export * from './net.js';
