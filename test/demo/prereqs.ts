// What the demo needs from the machine, checked before anything is created so that a missing
// tool is one clear line (with the Debian package to install), not a stack trace halfway in.
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';

export interface Tool {
  command: string;
  debianPackage: string;
}

export const DEMO_TOOLS: Tool[] = [
  { command: 'ip', debianPackage: 'iproute2' },
  { command: 'tc', debianPackage: 'iproute2' },
  { command: 'nft', debianPackage: 'nftables' },
  { command: 'nginx', debianPackage: 'nginx-light' },
  { command: 'iperf3', debianPackage: 'iperf3' },
  { command: 'curl', debianPackage: 'curl' },
];

export const CERT_TOOLS: Tool[] = [{ command: 'openssl', debianPackage: 'openssl' }];

export function onPath(command: string): boolean {
  // Root's PATH usually has the sbin directories; add them in case it does not (ip, tc, nft).
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'].filter(Boolean);
  return dirs.some((d) => {
    try {
      accessSync(join(d, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Problems that stop the demo before it starts; empty when it can run. */
export function checkPrerequisites(tools: Tool[]): string[] {
  const problems: string[] = [];
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    problems.push('must run as root: it creates network namespaces, veth pairs, tbf qdiscs and TUN devices (try: sudo npm run demo)');
  }
  const missing = tools.filter((t) => !onPath(t.command));
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((t) => t.debianPackage))];
    problems.push(`missing ${missing.map((t) => `\`${t.command}\``).join(', ')}: apt-get install -y ${pkgs.join(' ')}`);
  }
  return problems;
}
