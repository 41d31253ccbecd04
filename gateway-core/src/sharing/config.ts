// Configuration of edge-to-edge carrier sharing (edge `sharing.*`, and `carriers[].lentBy` for a
// carrier borrowed from another edge). Composed into config/schema.ts; every key is documented in
// docs/configuration.md.
import type { z } from 'zod';
import { host, hostPort, intIn, listOf, section, stringParsedBy, stringWhere } from '../config/fields.js';
import { parseHostPort } from '../config/net.js';

const identity = () => stringWhere('an edge identity (its certificate CN)', (s) => /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/.test(s));

/** carriers[].lentBy: this carrier is another edge's, reached over the local network. */
export const lentBySchema = section({
  peer: identity(),
  address: hostPort('host:port of the lending edge\'s sharing listener', false),
  /** Index of the carrier in the lender's sharing.lendCarriers (0-based). */
  carrier: intIn(0, 15),
});

/** Edge: sharing. */
export const sharingSchema = section({
  listen: stringParsedBy('host:port to accept borrowing edges on, or "" not to lend', (s) => {
    if (s !== '') parseHostPort(s);
  }).default(''),
  allow: listOf(identity(), 'a list of edge identities allowed to borrow carriers').default([]),
  lendCarriers: listOf(stringWhere('a carrier name', (s) => s.length > 0), 'a list of carrier names').default([]),
  advertise: host('the IPv4 address other edges dial back to').optional(),
  reverseAfterMs: intIn(0, 60_000).default(1000),
  retryMs: intIn(100, 60_000).default(2000),
}).prefault({});

export type SharingConfig = z.output<typeof sharingSchema>;
export type LentBy = z.output<typeof lentBySchema>;
