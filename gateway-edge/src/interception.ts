// S2-1 / S2-2: steer client traffic into the tunnel by policy routing, and only traffic to the
// destinations configured as multipath. Everything else keeps using the edge's own routes
// untouched. The rules match on the client subnets as source, so the gateway's own traffic
// (control plane, carrier sockets) never loops into the tunnel.
//
//   ip rule  from CLIENT to BYPASS    lookup main      (priority P-1)
//   ip rule  from CLIENT to MULTIPATH lookup T         (priority P)
//   ip route default dev braid0 table T
//   nft: masquerade into braid0 (the cloud knows the edge by its tunnel address), and clamp
//        TCP MSS to the tunnel MTU so clients never send packets the tunnel would fragment.
//   nft, with the TCP relay (docs/tcp-relay.md): the same client TCP connections (minus the
//        excluded ports) are redirected to the edge's relay listener instead, which terminates
//        them; the listener's port takes no connection that was not redirected.
import { ip, nft, nftDeleteTable, loosenRpFilter, readSysctl, writeSysctl, type EdgeConfig, type Logger } from '@braid/gateway-core';

const NFT_TABLE = 'braid_edge';
/** One nftables table per TUN device: an edge with several PoPs runs one gateway per PoP (docs/multi-pop.md). */
export function nftTable(device: string): string {
  return device === 'braid0' ? NFT_TABLE : `${NFT_TABLE}_${device.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

export interface InterceptionPlan {
  device: string;
  table: number;
  priority: number;
  clientSubnets: string[];
  multipath: string[];
  bypass: string[];
  /** The TCP relay's listening port (undefined: no relay, client TCP stays end to end). */
  relayPort?: number | undefined;
  /** TCP destination ports never relayed. */
  relayExcludePorts: number[];
}

export function planFrom(cfg: EdgeConfig, device: string, relayPort?: number): InterceptionPlan {
  return {
    relayPort,
    relayExcludePorts: cfg.dataPlane.tcpRelay.excludePorts,
    device,
    table: cfg.interception.routeTable,
    priority: cfg.interception.rulePriority,
    clientSubnets: cfg.interception.clientSubnets,
    multipath: cfg.interception.multipathDestinations,
    bypass: cfg.interception.bypassDestinations,
  };
}

/** nft set syntax for a list of CIDRs or ports; undefined when it matches everything (or nothing is listed). */
function nftSet(items: readonly (string | number)[]): string | undefined {
  if (items.length === 0 || items.includes('0.0.0.0/0')) return undefined;
  return `{ ${items.join(', ')} }`;
}

/** The relay's chains: redirect intercepted client TCP to the listener, and refuse the port to anything else. */
function relayChains(plan: InterceptionPlan): string {
  // No multipath destination (or everything bypassed): nothing to relay.
  if (plan.relayPort === undefined || plan.multipath.length === 0 || plan.bypass.includes('0.0.0.0/0')) return '';
  const match = [
    `ip saddr { ${plan.clientSubnets.join(', ')} }`,
    nftSet(plan.multipath) && `ip daddr ${nftSet(plan.multipath)}`,
    nftSet(plan.bypass) && `ip daddr != ${nftSet(plan.bypass)}`,
    'fib daddr type != local',
    'meta l4proto tcp',
    nftSet(plan.relayExcludePorts) && `tcp dport != ${nftSet(plan.relayExcludePorts)}`,
  ].filter(Boolean).join(' ');
  return `
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ${match} redirect to :${plan.relayPort}
  }
  chain input {
    type filter hook input priority filter; policy accept;
    tcp dport ${plan.relayPort} ct status dnat accept
    tcp dport ${plan.relayPort} reject with tcp reset
  }`;
}

export function nftScript(plan: InterceptionPlan): string {
  return `table ip ${nftTable(plan.device)} {${relayChains(plan)}
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${plan.device}" masquerade
  }
  chain forward {
    type filter hook forward priority mangle; policy accept;
    oifname "${plan.device}" tcp flags syn tcp option maxseg size set rt mtu
    iifname "${plan.device}" tcp flags syn tcp option maxseg size set rt mtu
  }
}
`;
}

export async function installInterception(plan: InterceptionPlan, log: Logger): Promise<void> {
  await removeInterception(plan);
  if (readSysctl('net.ipv4.ip_forward') !== '1') {
    writeSysctl('net.ipv4.ip_forward', '1');
    log.warn('net.ipv4.ip_forward was 0: enabled it (the edge forwards client traffic)');
  }
  // Return traffic arrives on the tunnel from addresses routed elsewhere: strict reverse-path
  // filtering would drop it. Loose mode still drops unroutable sources.
  loosenRpFilter(plan.device);
  await ip('route', 'replace', 'default', 'dev', plan.device, 'table', String(plan.table));
  for (const from of plan.clientSubnets) {
    for (const to of plan.bypass) {
      await ip('rule', 'add', 'from', from, 'to', to, 'lookup', 'main', 'priority', String(plan.priority - 1));
    }
    for (const to of plan.multipath) {
      await ip('rule', 'add', 'from', from, 'to', to, 'lookup', String(plan.table), 'priority', String(plan.priority));
    }
  }
  await nft(nftScript(plan));
  log.info({ clientSubnets: plan.clientSubnets, multipath: plan.multipath, bypass: plan.bypass, table: plan.table, tcpRelayPort: plan.relayPort ?? null }, 'interception installed');
}

/** Remove everything installInterception added (safe to call when nothing is installed). */
export async function removeInterception(plan: InterceptionPlan): Promise<void> {
  for (const prio of [plan.priority, plan.priority - 1]) {
    // `ip rule del priority P` removes one rule per call.
    for (let i = 0; i < 4096; i++) {
      const ok = await ip('rule', 'del', 'priority', String(prio)).then(() => true, () => false);
      if (!ok) break;
    }
  }
  await ip('route', 'flush', 'table', String(plan.table)).catch(() => undefined);
  await nftDeleteTable('ip', nftTable(plan.device));
}
