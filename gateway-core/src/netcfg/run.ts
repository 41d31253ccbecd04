// The one place the gateways change the host's network configuration: `ip`, `nft` and sysctls,
// run as child processes (iproute2 and nftables are what every CPE image and container has;
// netlink from Node would mean another native dependency for no gain at start-up speed).
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

export class NetConfigError extends Error {}

export function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === 'ENOENT' ? `${cmd} is not installed (Debian package ${cmd === 'nft' ? 'nftables' : 'iproute2'})` : String(stderr).trim() || err.message;
        reject(new NetConfigError(`${cmd} ${args.join(' ')}: ${why}`));
      } else resolve(String(stdout));
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export const ip = (...args: string[]): Promise<string> => run('ip', args);

/** Apply an nftables script (atomic: all or nothing). */
export const nft = (script: string): Promise<string> => run('nft', ['-f', '-'], script);

export async function nftDeleteTable(family: string, table: string): Promise<void> {
  await run('nft', ['delete', 'table', family, table]).catch(() => undefined);
}

export function sysctlPath(key: string): string {
  return '/proc/sys/' + key.replace(/\./g, '/');
}

export function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(sysctlPath(key), 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function writeSysctl(key: string, value: string): void {
  // Containers get /proc/sys read-only; the pod sets what we need at creation (pod sysctls), so
  // a value that is already right is not written and the read-only mount is no obstacle.
  if (readSysctl(key) === value) return;
  try {
    writeFileSync(sysctlPath(key), value);
  } catch (e) {
    throw new NetConfigError(`cannot set ${key}=${value}: ${(e as Error).message} (needs NET_ADMIN in the gateway's network namespace)`);
  }
}

/**
 * Return traffic arrives on the tunnel from addresses routed elsewhere, which strict
 * reverse-path filtering drops. The kernel applies max(conf.all, conf.DEV): only when that is 1
 * (strict) is DEV set to 2 (loose). Off (0) already lets it through, and leaving it alone keeps
 * containers working, where /proc/sys is read-only.
 */
export function loosenRpFilter(dev: string): void {
  const all = Number(readSysctl('net.ipv4.conf.all.rp_filter') ?? '0');
  const own = Number(readSysctl(`net.ipv4.conf.${dev}.rp_filter`) ?? '0');
  if (Math.max(all, own) === 1) writeSysctl(`net.ipv4.conf.${dev}.rp_filter`, '2');
}

/** Give a TUN device its address and MTU and bring it up. */
export async function configureTun(dev: string, address: string, prefixLen: number, mtu: number): Promise<void> {
  await ip('addr', 'replace', `${address}/${prefixLen}`, 'dev', dev);
  await ip('link', 'set', 'dev', dev, 'mtu', String(mtu), 'up');
}

/** The IPv4 destination of a packet read from TUN, as a 32-bit number, or undefined if not IPv4. */
export function ipv4Destination(pkt: Buffer): number | undefined {
  if (pkt.length < 20 || (pkt[0] as number) >> 4 !== 4) return undefined;
  return pkt.readUInt32BE(16);
}
