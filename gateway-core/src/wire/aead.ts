// Authenticated encryption of one datagram. AES-256-GCM from node:crypto, one key per session
// and direction (handed out by the cloud over the mTLS control plane). The nonce is built from
// the authenticated header (path id, key id, path sequence), which never repeats under a key:
// each path counts its own sequence and path ids are unique within a session.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { OUTER_LEN, TAG_LEN } from './header.js';

export const CIPHER = 'aes-256-gcm';
export const KEY_LEN = 32;

function nonceOf(header: Buffer, nonce: Buffer): Buffer {
  header.copy(nonce, 0, 2, 4); // path id
  header.copy(nonce, 2, 8, 16); // key id + 48-bit path sequence
  nonce[10] = 0;
  nonce[11] = 0;
  return nonce;
}

export class Sealer {
  private readonly nonce = Buffer.alloc(12);

  constructor(private readonly key: Buffer) {
    if (key.length !== KEY_LEN) throw new Error(`data-plane key must be ${KEY_LEN} bytes, got ${key.length}`);
  }

  /**
   * Seal `parts` (the plaintext, given in pieces to avoid a concatenation) behind the 16-byte
   * header already written at the start of `out`, which must be exactly header+plaintext+tag long.
   */
  sealInto(out: Buffer, parts: readonly Buffer[]): Buffer {
    const header = out.subarray(0, OUTER_LEN);
    const c = createCipheriv(CIPHER, this.key, nonceOf(header, this.nonce), { authTagLength: TAG_LEN });
    c.setAAD(header);
    let off = OUTER_LEN;
    for (const p of parts) {
      const ct = c.update(p);
      ct.copy(out, off);
      off += ct.length;
    }
    const fin = c.final();
    fin.copy(out, off);
    off += fin.length;
    c.getAuthTag().copy(out, off);
    return out;
  }
}

export class Opener {
  private readonly nonce = Buffer.alloc(12);

  constructor(private readonly key: Buffer) {
    if (key.length !== KEY_LEN) throw new Error(`data-plane key must be ${KEY_LEN} bytes, got ${key.length}`);
  }

  /** The plaintext after the header, or undefined when the tag does not verify. */
  open(datagram: Buffer): Buffer | undefined {
    const header = datagram.subarray(0, OUTER_LEN);
    const tagAt = datagram.length - TAG_LEN;
    const d = createDecipheriv(CIPHER, this.key, nonceOf(header, this.nonce), { authTagLength: TAG_LEN });
    d.setAAD(header);
    d.setAuthTag(datagram.subarray(tagAt));
    const pt = d.update(datagram.subarray(OUTER_LEN, tagAt));
    try {
      d.final();
    } catch {
      return undefined;
    }
    return pt;
  }
}
