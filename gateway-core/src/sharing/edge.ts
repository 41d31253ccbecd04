// Carrier sharing as an edge gateway runs it: one RendezvousPeer (rendezvous client to the cloud,
// the permanent listener when lending), a CarrierLender when `sharing.listen` is set, and one
// CarrierBorrower per lending edge named by `carriers[].lentBy`. edge.ts only starts it, skips the
// transport racer for borrowed carriers, and shows its counters in /status.
import { silentLogger, type Logger } from '../log.js';
import { parseHostPort } from '../config/net.js';
import type { EdgeConfig } from '../config/schema.js';
import type { Path } from '../path/path.js';
import { RendezvousClient } from '../rendezvous/client.js';
import { RendezvousPeer } from '../rendezvous/link.js';
import { CarrierBorrower, type BorrowedCarrier } from './borrower.js';
import { CarrierLender, type CarrierCounters } from './lender.js';

export interface EdgeSharingDeps {
  /** The cloud's data-plane endpoint, once this edge has a session. */
  cloudData: () => { host: string; port: number } | undefined;
  /** Give a borrowed carrier's path to the current session. */
  attach: (pathId: number, path: Path) => void;
  logger?: Logger;
}

export interface EdgeSharingStatus {
  lending: { links: number; carriers: CarrierCounters[]; malformed: number } | null;
  borrowing: { lender: string; direction: string | null; links: number; forward: number; reverse: number; failures: number }[];
  refused: Record<string, number>;
}

export interface EdgeSharing {
  status(): EdgeSharingStatus;
  /** A new session: give it the borrowed carriers' current paths. */
  reattach(): void;
  stop(): void;
}

/** True when the config lends or borrows anything (otherwise nothing is started). */
export function sharingConfigured(cfg: EdgeConfig): boolean {
  return cfg.sharing.listen !== '' || cfg.carriers.some((c) => c.lentBy);
}

export async function startEdgeSharing(cfg: EdgeConfig, deps: EdgeSharingDeps): Promise<EdgeSharing | undefined> {
  if (!sharingConfigured(cfg)) return undefined;
  const log = (deps.logger ?? silentLogger).child({ component: 'sharing' });
  const s = cfg.sharing;
  const client = await RendezvousClient.open({
    target: cfg.control.cloud, tls: cfg.control.tls, ...(cfg.control.serverName ? { serverName: cfg.control.serverName } : {}), logger: log,
  });
  const listen = s.listen !== '' ? parseHostPort(s.listen) : undefined;
  const allow = new Set(s.allow);
  const peer = new RendezvousPeer({
    id: cfg.id, rendezvous: client, bindHost: listen?.host ?? '0.0.0.0', advertiseHost: s.advertise ?? listen?.host ?? '0.0.0.0',
    ...(listen ? { listenPort: listen.port } : {}), acceptFrom: (initiator) => allow.has(initiator), logger: log,
  });
  await peer.start();
  const own = cfg.carriers.filter((c) => !c.lentBy);
  const lent = s.lendCarriers.length > 0 ? own.filter((c) => s.lendCarriers.includes(c.name)) : own;
  const lender = listen ? new CarrierLender({ peer, carriers: lent.map((c) => ({ name: c.name, interface: c.interface })), cloud: deps.cloudData, logger: log }) : undefined;
  const byLender = new Map<string, { address: string; carriers: BorrowedCarrier[] }>();
  cfg.carriers.forEach((c, pathId) => {
    if (!c.lentBy) return;
    const g = byLender.get(c.lentBy.peer) ?? { address: c.lentBy.address, carriers: [] };
    g.carriers.push({ pathId, name: c.name, index: c.lentBy.carrier });
    byLender.set(c.lentBy.peer, g);
  });
  const borrowers = [...byLender].map(([id, g]) => {
    const b = new CarrierBorrower({
      peer, lender: id, address: parseHostPort(g.address), carriers: g.carriers, attach: deps.attach,
      reverseAfterMs: s.reverseAfterMs, retryMs: s.retryMs, logger: log,
    });
    b.start();
    return { id, b };
  });
  log.info({ lending: lent.map((c) => c.name), allow: s.allow, listen: s.listen, borrowing: [...byLender.keys()] }, 'carrier sharing started');
  return {
    status: () => ({
      lending: lender ? { links: lender.activeLinks, carriers: lender.counters.map((c) => ({ ...c })), malformed: lender.malformed } : null,
      borrowing: borrowers.map(({ id, b }) => ({ lender: id, direction: b.direction ?? null, links: b.stats.links, forward: b.stats.forward, reverse: b.stats.reverse, failures: b.stats.failures })),
      refused: { ...peer.stats.refused },
    }),
    reattach: () => {
      for (const { b } of borrowers) b.reattach();
    },
    stop: () => {
      for (const { b } of borrowers) b.stop();
      lender?.close();
      peer.close();
      client.close();
    },
  };
}
