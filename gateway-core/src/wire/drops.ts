// Every packet the data plane refuses is counted under one reason: never a crash, never a
// silent loss. The reasons are a closed list so dashboards and tests can rely on them.

export const DROP_REASONS = [
  'truncated', // shorter than the fixed header + tag
  'oversized', // larger than any datagram we send
  'bad-version', // protocol version we do not speak
  'bad-type', // unknown packet type
  'bad-reserved', // reserved header bits set
  'unknown-session', // no session with this id
  'unknown-path', // path id outside what the session announced
  'auth-failed', // AEAD tag did not verify (tampered, wrong key)
  'replayed', // sequence already seen on this path, or too old for the window
  'malformed-body', // authenticated, but the inner body does not parse
  'unknown-context', // a header-compressed packet names a context the peer has not announced (wire/compress)
  'duplicate', // data sequence already delivered
  'too-late', // data sequence older than the reorder window
  'reorder-overflow', // reorder buffer full: gap skipped to make room
  'tun-full', // kernel TUN queue full
  'send-error', // socket send failed (link down, no route)
  'no-path', // no usable path for an outgoing packet
  'queue-full', // sender queue full (packets or bytes)
  'queue-timeout', // waited in the sender queue longer than its bound
  'no-session', // outgoing packet for an address with no session
  'not-ip', // packet from TUN that is not IPv4
  'forward-malformed', // replica-to-replica frame that does not parse (gateway-cloud/src/forward.ts)
  'forward-not-replica', // replica-to-replica frame from an address that is not a known replica
  'relay-malformed', // TCP relay frame that does not parse, or names another connection than its stream's (relay/frame.ts)
  'relay-window', // TCP relay data beyond the window the receiving side advertised
  'relay-spoofed', // a packet read from the TUN device that claims to be a relay frame (protocol 253)
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

export class DropCounters {
  private readonly counts = new Map<DropReason, number>();

  add(reason: DropReason, n = 1): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + n);
  }

  get(reason: DropReason): number {
    return this.counts.get(reason) ?? 0;
  }

  total(): number {
    let t = 0;
    for (const v of this.counts.values()) t += v;
    return t;
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}
