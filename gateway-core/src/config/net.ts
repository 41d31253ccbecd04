// Small, dependency-free validators for the network values that appear in configuration and that
// other modules (netcfg, control, tunnel address pools) need to parse the same way. Each parser
// throws a NetParseError whose reason says what is wrong in words a person editing YAML
// understands; the config schemas put that reason after the field path.
import { isIPv4, isIPv6 } from 'node:net';

/** Thrown by the parsers here: `reason` alone reads well after "got <value>: " in a config message. */
export class NetParseError extends Error {
  constructor(readonly input: unknown, readonly reason: string) {
    super(`${JSON.stringify(input)}: ${reason}`);
    this.name = 'NetParseError';
  }
}

/** Linux IFNAMSIZ is 16 including the terminating NUL, so 15 visible characters at most. */
const IFNAME_MAX = 15;

/**
 * True when `s` is a name the Linux kernel accepts for a network interface (dev_valid_name):
 * 1-15 characters, not "." or "..", no '/', ':' or whitespace.
 */
export function isValidIfname(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  if (s.length < 1 || s.length > IFNAME_MAX) return false;
  if (s === '.' || s === '..') return false;
  return !/[/:\s]/.test(s);
}

/** Dotted quad to an unsigned 32-bit number; throws on anything that is not exactly four 0-255 octets. */
export function ipv4ToNumber(s: string): number {
  if (typeof s !== 'string') throw new NetParseError(s, 'not a string');
  const parts = s.split('.');
  if (parts.length !== 4) throw new NetParseError(s, 'not an IPv4 address (expected four dot-separated numbers)');
  let n = 0;
  for (const p of parts) {
    // Leading zeros are refused because some tools read them as octal ("010" = 8).
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) throw new NetParseError(s, `octet "${p}" is not a number 0-255`);
    const v = Number(p);
    if (v > 255) throw new NetParseError(s, `octet ${v} is greater than 255`);
    n = n * 256 + v;
  }
  return n >>> 0;
}

/** Unsigned 32-bit number to dotted quad. */
export function numberToIpv4(n: number): string {
  const u = n >>> 0;
  return `${u >>> 24}.${(u >>> 16) & 255}.${(u >>> 8) & 255}.${u & 255}`;
}

/** The netmask of a prefix length as an unsigned 32-bit number (prefix 0 gives 0). */
export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export interface Cidr {
  /** The address as written (normalised), equal to the network address unless allowHostBits. */
  address: string;
  /** Network address as an unsigned 32-bit number (host bits cleared). */
  network: number;
  /** Prefix length 0-32. */
  prefix: number;
}

export interface ParseCidrOptions {
  /**
   * Accept an address with host bits set (an interface address such as 10.0.0.1/24). Off by
   * default: in a destination or subnet list, "10.0.0.1/24" is almost always a typo for the
   * network, and silently widening or narrowing a routing rule is worse than an error.
   */
  allowHostBits?: boolean;
}

/** Parse an IPv4 CIDR "a.b.c.d/p". A bare address is not accepted: write /32 to mean one host. */
export function parseCidr(s: string, opts: ParseCidrOptions = {}): Cidr {
  if (typeof s !== 'string') throw new NetParseError(s, 'not a string');
  const slash = s.indexOf('/');
  if (slash < 0) throw new NetParseError(s, `no prefix length (write ${s}/32 for a single host)`);
  const addr = s.slice(0, slash);
  const pfx = s.slice(slash + 1);
  const value = ipv4ToNumber(addr);
  if (!/^(0|[1-9][0-9]?)$/.test(pfx) || Number(pfx) > 32) throw new NetParseError(s, `prefix length "${pfx}" is not 0-32`);
  const prefix = Number(pfx);
  const network = (value & prefixMask(prefix)) >>> 0;
  if (network !== value && !opts.allowHostBits) {
    throw new NetParseError(s, `host bits set, did you mean ${numberToIpv4(network)}/${prefix}?`);
  }
  return { address: numberToIpv4(value), network, prefix };
}

/** True when the IPv4 address (as a number) lies inside the CIDR. */
export function cidrContains(cidr: Cidr, ip: number): boolean {
  return ((ip & prefixMask(cidr.prefix)) >>> 0) === cidr.network;
}

/** RFC 1123 host name: dot-separated labels of letters, digits and '-', not starting or ending with '-'. */
export function isValidHostname(s: string): boolean {
  if (s.length < 1 || s.length > 253) return false;
  const name = s.endsWith('.') ? s.slice(0, -1) : s;
  return name.split('.').every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l));
}

/** A host name, an IPv4 address or an IPv6 address (without brackets). */
export function isValidHost(s: string): boolean {
  return isIPv4(s) || isIPv6(s) || (!/^[0-9.]+$/.test(s) && isValidHostname(s));
}

export interface HostPort {
  /** Host name or IP address; IPv6 without the brackets. */
  host: string;
  /** 0-65535; 0 means "any free port" for a listen address. */
  port: number;
}

/** Parse "host:port", "1.2.3.4:port" or "[v6]:port". Throws with the reason on anything else. */
export function parseHostPort(s: string): HostPort {
  if (typeof s !== 'string') throw new NetParseError(s, 'not a string');
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0 || s[close + 1] !== ':') throw new NetParseError(s, 'not "[ipv6]:port"');
    host = s.slice(1, close);
    portText = s.slice(close + 2);
    if (!isIPv6(host)) throw new NetParseError(s, `"${host}" is not an IPv6 address`);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) throw new NetParseError(s, 'no port');
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) throw new NetParseError(s, `write IPv6 addresses in brackets, e.g. [::1]:${portText}`);
    if (!isValidHost(host)) throw new NetParseError(s, `"${host}" is not a valid host name or IP address`);
  }
  if (!/^(0|[1-9][0-9]{0,4})$/.test(portText) || Number(portText) > 65535) {
    throw new NetParseError(s, `port "${portText}" is not a number 0-65535`);
  }
  return { host, port: Number(portText) };
}
