// "host:port" parsing for listen and target addresses.

export interface HostPort {
  host: string;
  port: number;
}

/** Parses "127.0.0.1:7443", "localhost:0", "[::1]:7443". Throws on anything else. */
export function parseHostPort(s: string, allowPortZero = true): HostPort {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(s);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!host || !Number.isInteger(port) || port > 65535 || (port === 0 && !allowPortZero)) {
    throw new Error(`invalid address "${s}": expected host:port (IPv6 as [addr]:port)`);
  }
  return { host, port };
}
