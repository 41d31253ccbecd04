// The cloud's exit: merged packets leave through the kernel's routing with their source
// masqueraded to the cloud's own address, and answers come back through conntrack to the
// tunnel. TCP MSS is clamped to the tunnel MTU in both directions.
import { nft, nftDeleteTable, loosenRpFilter, readSysctl, writeSysctl, type Logger } from '@braid/gateway-core';

const NFT_TABLE = 'braid_cloud';

export function egressScript(device: string, pool: string, nat: boolean, iface?: string): string {
  const out = iface ? `oifname "${iface}"` : `oifname != "${device}"`;
  return `table ip ${NFT_TABLE} {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
${nat ? `    ip saddr ${pool} ${out} masquerade\n` : ''}  }
  chain forward {
    type filter hook forward priority mangle; policy accept;
    iifname "${device}" tcp flags syn tcp option maxseg size set rt mtu
    oifname "${device}" tcp flags syn tcp option maxseg size set rt mtu
  }
}
`;
}

export async function installEgress(device: string, pool: string, nat: boolean, iface: string | undefined, log: Logger): Promise<void> {
  await nftDeleteTable('ip', NFT_TABLE);
  if (readSysctl('net.ipv4.ip_forward') !== '1') {
    writeSysctl('net.ipv4.ip_forward', '1');
    log.warn('net.ipv4.ip_forward was 0: enabled it (the cloud forwards merged traffic)');
  }
  loosenRpFilter(device);
  await nft(egressScript(device, pool, nat, iface));
  log.info({ pool, nat, interface: iface ?? 'any' }, 'egress installed');
}

export async function removeEgress(): Promise<void> {
  await nftDeleteTable('ip', NFT_TABLE);
}
