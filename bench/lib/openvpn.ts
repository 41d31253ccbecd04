// OpenVPN as the single-tunnel peer in the benchmark: a TLS-mode point-to-point tunnel between
// the edge namespace (client) and the cloud namespace (server), UDP over the same carrier path
// Braid uses (edge wan0 -> car0 -> cloud 198.18.0.1). OpenVPN 2.6 refuses a static key with
// AES-256-GCM, hence TLS with a throwaway CA and certificates made here with openssl.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../test/harness/netns.js';
import type { ManagedProcess } from '../../test/harness/process.js';
import type { Topology } from '../../test/harness/topology.js';

export const OPENVPN_BIN = '/usr/sbin/openvpn';
export const OPENVPN_PORT = 1194;
export const OPENVPN_DEV = 'ovpn0';
/** Inner (tunnel) addresses of the point-to-point link. */
export const OPENVPN_ADDR = { cloud: '10.8.0.1', edge: '10.8.0.2' } as const;

export interface OpenVpnTunnel {
  server: ManagedProcess;
  client: ManagedProcess;
  /** Versions line of `openvpn --version`. */
  version: string;
  stop(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run(['openssl', ...args], { cwd });
}

/** CA, server and client certificates (P-256) with the key usages --remote-cert-tls checks. */
export async function makeOpenVpnCerts(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=braid-bench-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  for (const [name, eku] of [['server', 'serverAuth'], ['client', 'clientAuth']] as const) {
    await writeFile(join(dir, `${name}.ext`),
      `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=${eku}\n`);
    await openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=braid-bench-${name}`], dir);
    await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir);
  }
}

/** Options both ends share: the data channel is AES-256-GCM, in userspace (no DCO kernel module). */
function commonArgs(dir: string, name: 'server' | 'client'): string[] {
  return [
    '--dev', OPENVPN_DEV, '--dev-type', 'tun', '--proto', 'udp',
    '--cipher', 'AES-256-GCM', '--data-ciphers', 'AES-256-GCM',
    // Explicit so that the figure is the classic userspace OpenVPN, whatever the kernel offers.
    '--disable-dco',
    '--ca', join(dir, 'ca.pem'), '--cert', join(dir, `${name}.pem`), '--key', join(dir, `${name}.key`),
    '--ping', '5', '--verb', '3',
  ];
}

/**
 * Starts the server in the cloud namespace and the client in the edge namespace and waits for
 * both to finish initialisation. Routes: the edge sends the server subnet into the tunnel, the
 * cloud sends the client subnet back into it; no NAT on either side.
 */
export async function startOpenVpn(topo: Topology, dir: string, logDir: string): Promise<OpenVpnTunnel> {
  const version = (await run([OPENVPN_BIN, '--version'], { allowFailure: true })).stdout.split('\n')[0]?.trim() ?? '';
  const server = topo.spawn(topo.ns.cloud, [
    OPENVPN_BIN, ...commonArgs(dir, 'server'), '--tls-server', '--dh', 'none', '--remote-cert-tls', 'client',
    '--local', topo.addr.cloudPublic, '--lport', String(OPENVPN_PORT),
    '--ifconfig', OPENVPN_ADDR.cloud, OPENVPN_ADDR.edge,
    '--route', '10.10.0.0', '255.255.255.0',
  ], { name: 'openvpn-server', logFile: join(logDir, 'openvpn-server.log') });
  const client = topo.spawn(topo.ns.edge, [
    OPENVPN_BIN, ...commonArgs(dir, 'client'), '--tls-client', '--remote-cert-tls', 'server', '--nobind',
    '--remote', topo.addr.cloudPublic, String(OPENVPN_PORT),
    '--ifconfig', OPENVPN_ADDR.edge, OPENVPN_ADDR.cloud,
    '--route', '10.40.0.0', '255.255.255.0',
  ], { name: 'openvpn-client', logFile: join(logDir, 'openvpn-client.log') });
  const stop = async (): Promise<void> => {
    await topo.release(client);
    await topo.release(server);
  };
  try {
    await Promise.all([
      server.waitFor(/Initialization Sequence Completed/, 30_000),
      client.waitFor(/Initialization Sequence Completed/, 30_000),
    ]);
    // The log says which data cipher was agreed; refuse to measure anything but the one asked for.
    const cipher = /Data Channel: cipher '([^']+)'/.exec(client.output())?.[1]
      ?? /Outgoing Data Channel: Cipher '([^']+)'/.exec(client.output())?.[1];
    if (cipher !== undefined && cipher !== 'AES-256-GCM') throw new Error(`openvpn negotiated ${cipher}, not AES-256-GCM`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { server, client, version, stop };
}
