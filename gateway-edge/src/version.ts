// The software version reported in Hello and in status.
export const VERSION = '0.1.0';
