// Gateway configuration: one YAML file per gateway, validated by zod, every default documented in
// docs/configuration.md.
export { edgeConfigSchema, cloudConfigSchema, LOG_LEVELS, CARRIER_TECHNOLOGIES, MAX_CARRIERS } from './schema.js';
export type { EdgeConfig, CloudConfig, TlsConfig, DataPlaneConfig, CarrierConfig, LogConfig } from './schema.js';
export { ConfigError, type ConfigIssue } from './errors.js';
export { parseEdgeConfig, parseCloudConfig, loadEdgeConfig, loadCloudConfig, readYamlFile } from './load.js';
export {
  NetParseError, parseCidr, parseHostPort, isValidIfname, isValidHost, isValidHostname, ipv4ToNumber, numberToIpv4,
  prefixMask, cidrContains, type Cidr, type HostPort, type ParseCidrOptions,
} from './net.js';
