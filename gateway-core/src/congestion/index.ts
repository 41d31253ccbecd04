// S3 per-path delay-based congestion control (see docs/congestion.md).
export * from './delay.js';
export * from './windowed-min.js';
export * from './s3.js';
export * from './pacer.js';
