// Reading PEM files and describing peer certificates for logs. Values in a certificate that
// failed verification are attacker-chosen: they are cleaned and shortened before they reach a
// log line.
import { readFile } from 'node:fs/promises';
import type { PeerCertificate } from 'node:tls';
import type { TlsFiles } from './types.js';

export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export async function readTlsFiles(files: TlsFiles): Promise<TlsMaterial> {
  const read = async (what: string, path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new Error(`control plane: cannot read TLS ${what} file ${path}: ${(err as Error).message}`);
    }
  };
  const [ca, cert, key] = await Promise.all([read('CA', files.ca), read('certificate', files.cert), read('key', files.key)]);
  return { ca, cert, key };
}

/** Printable ASCII only, at most `max` characters. */
export function clean(value: string, max = 128): string {
  const s = value.replace(/[^\x20-\x7e]/g, '?');
  return s.length > max ? s.slice(0, max) + '...' : s;
}

/** node:tls gives repeated attributes as arrays. */
function attr(v: string | string[] | undefined): string {
  return Array.isArray(v) ? v.join('+') : (v ?? '');
}

/** Common name of a subject/issuer, '' when absent. */
export function commonName(name: PeerCertificate['subject'] | undefined): string {
  return name ? clean(attr(name.CN)) : '';
}

/** "CN=Rogue CA, O=Braid dev" */
export function distinguishedName(name: PeerCertificate['subject'] | undefined): string {
  if (!name) return '';
  const parts = Object.entries(name as unknown as Record<string, string | string[]>).map(([k, v]) => `${k}=${attr(v)}`);
  return clean(parts.reverse().join(', '), 200);
}

/** True when node:tls returned an actual certificate (it returns {} when the peer sent none). */
export function hasCertificate(cert: PeerCertificate | undefined | null): cert is PeerCertificate {
  return !!cert && Buffer.isBuffer(cert.raw) && cert.raw.length > 0;
}
