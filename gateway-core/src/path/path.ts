// A Path is one carrier link's datagram transport between the two gateways. The session sees
// only this interface: UDP today; TCP and TLS transports (S0 racing) implement the same one.

export interface Path {
  /** What the path is bound to, for logs and status (e.g. "udp wan1 -> 198.18.0.1:7000"). */
  readonly description: string;
  /**
   * Hand one datagram to the transport. Returns false when it was refused at once (closed, no
   * route); asynchronous send failures are reported through onError. Never throws.
   */
  send(datagram: Buffer): boolean;
  /** Receive datagrams arriving on this path (edge side: the peer answers on the same link). */
  onDatagram(cb: (datagram: Buffer) => void): void;
  onError(cb: (err: Error) => void): void;
  close(): void;
}
