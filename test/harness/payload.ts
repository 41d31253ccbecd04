// The download payload the container tests' server generates (an LCG, seed 12345, one byte per
// step from the top byte), so a client's sha256 can be checked against it without sending it.
import { createHash } from 'node:crypto';

export function expectedPayloadSha(bytes: number): string {
  const buf = Buffer.alloc(bytes);
  let x = 12345;
  for (let i = 0; i < bytes; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; buf[i] = x >>> 24; }
  return createHash('sha256').update(buf).digest('hex');
}
