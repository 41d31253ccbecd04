export * from './types.js';
export * from './command.js';
export * from './config.js';
export * from './composite.js';
export * from './modemmanager.js';
export * from './gpsd.js';
export * from './emulator.js';
export * from './from-config.js';
export { MmcliFormatError } from './mmcli-parse.js';
