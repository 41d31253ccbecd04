// Tunnel addresses for edges. The cloud takes the first host address of the pool; each edge
// session gets the next free one and returns it when the session ends. Edges are told their
// address in Hello and masquerade their clients behind it, so overlapping client subnets of
// different edges never collide at the cloud.
import { numberToIpv4, parseCidr } from '@braid/gateway-core';

export class AddressPool {
  readonly gateway: string;
  readonly prefix: number;
  private readonly first: number;
  private readonly last: number;
  private readonly used = new Set<number>();
  private cursor: number;

  constructor(cidr: string) {
    const c = parseCidr(cidr);
    this.prefix = c.prefix;
    const size = 2 ** (32 - c.prefix);
    this.first = c.network + 2; // network + 1 is the cloud itself
    this.last = c.network + size - 2; // last is broadcast
    this.gateway = numberToIpv4(c.network + 1);
    this.cursor = this.first;
    if (this.last < this.first) throw new Error(`address pool ${cidr} has no room for edges`);
  }

  get capacity(): number {
    return this.last - this.first + 1;
  }

  /** The next free address as a number, or undefined when the pool is exhausted. */
  allocate(): number | undefined {
    for (let i = 0; i < this.capacity; i++) {
      const a = this.cursor;
      this.cursor = this.cursor >= this.last ? this.first : this.cursor + 1;
      if (!this.used.has(a)) {
        this.used.add(a);
        return a;
      }
    }
    return undefined;
  }

  release(a: number): void {
    this.used.delete(a);
  }
}
