// A Path is one carrier link's datagram transport between the two gateways. The session sees
// only this interface: UDP, TCP and TLS transports (S0 racing) all implement it, and one shared
// compliance suite (gateway-core/test/path-compliance.test.ts) holds them to the same contract.

/** The transport under a path (status, racing decisions). */
export type TransportKind = 'udp' | 'tcp' | 'tls';

export interface Path {
  /** What the path is bound to, for logs and status (e.g. "udp wan1 -> 198.18.0.1:7000"). */
  readonly description: string;
  /** The transport kind, when the path has one fixed kind (a racing path reports its current one). */
  readonly kind?: TransportKind;
  /**
   * Hand one datagram to the transport. Returns false when it was refused at once (closed, no
   * route, send queue full); asynchronous send failures are reported through onError. Never throws.
   */
  send(datagram: Buffer): boolean;
  /**
   * S0-7: send a datagram of a packet type (the session passes the traffic class: realtime,
   * interactive, bulk) on the stream bound to that type, when the path has several and one is
   * bound (TransportRacer); otherwise like send(). Optional: paths without it get send().
   */
  sendTyped?(type: string, datagram: Buffer): boolean;
  /** Receive datagrams arriving on this path (edge side: the peer answers on the same link). */
  onDatagram(cb: (datagram: Buffer) => void): void;
  onError(cb: (err: Error) => void): void;
  /**
   * Connection-oriented paths: called once when the path stops working for good (peer closed,
   * reset, error). Not called after close() by the owner. Connectionless paths never call it.
   */
  onClose?(cb: (err: Error | undefined) => void): void;
  /** Idempotent; no callbacks run after it returns. */
  close(): void;
}
