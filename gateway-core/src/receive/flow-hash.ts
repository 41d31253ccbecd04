// A cheap 32-bit hash of an IPv4 packet's flow (protocol, addresses, and ports: classify.carriesPorts),
// read straight from the header: the reorder buffer computes it for every packet it delivers,
// so it must cost a few byte reads, not a parse into strings. Collisions only make the
// per-flow order check (receive/reorder) stricter than it needs to be, never looser.
import { carriesPorts } from '../schedule/classify.js';

export function ipFlowHash(ip: Buffer): number {
  if (ip.length < 20) return 0;
  let h = 0x811c9dc5;
  const mix = (b: number) => { h = Math.imul(h ^ b, 0x01000193); };
  mix(ip[9] as number);
  for (let i = 12; i < 20; i++) mix(ip[i] as number);
  const proto = ip[9];
  const ihl = ((ip[0] as number) & 0x0f) * 4;
  if (carriesPorts(proto as number) && ip.length >= ihl + 4) for (let i = ihl; i < ihl + 4; i++) mix(ip[i] as number);
  return h >>> 0;
}
