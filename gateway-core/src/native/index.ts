// Typed access to the braid_native addon (gateway-core/native): TUN devices and the socket
// options Node does not expose. The addon is loaded on first use, not at import, so that code
// which never touches TUN or socket options (schedulers, wire codecs, their unit tests) still
// works where the addon was not built.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:dgram';
import type { Socket as NetSocket } from 'node:net';

export type MtuDiscoverMode = 'dont' | 'do' | 'probe' | 'want';

/** Callback of pollStart: an error (polling has then stopped) or one batch of packets. */
export type NativePollCallback = (err: Error | null, packets: Buffer[] | undefined) => void;

/** The raw addon surface; see native/src/braid_native.cc. */
export interface BraidNativeAddon {
  openTun(name: string): { fd: number; name: string };
  closeFd(fd: number): void;
  tunWrite(fd: number, packet: Buffer): boolean;
  tunWriteBatch(fd: number, packets: Buffer[]): number;
  pollStart(fd: number, cb: NativePollCallback, batchLimit?: number): number;
  pollStop(id: number): boolean;
  setBindToDevice(fd: number, ifname: string): void;
  setMark(fd: number, mark: number): void;
  setMtuDiscover(fd: number, mode: MtuDiscoverMode): void;
  originalDst(fd: number): { address: string; port: number };
}

const ADDON_PATH = join('native', 'build', 'Release', 'braid_native.node');

// Walks up from this module's directory: from src/native/ under tsx and from dist/native/ after
// `tsc -b` the package root is two levels up, but walking keeps it right if the layout moves.
function findAddon(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, ADDON_PATH);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

let addon: BraidNativeAddon | undefined;

/** The loaded addon; throws an Error explaining how to build it when it is missing. */
export function loadNative(): BraidNativeAddon {
  if (addon !== undefined) return addon;
  const path = process.env.BRAID_NATIVE_ADDON ?? findAddon();
  const hint = 'the braid_native addon is not built: run `npm ci` at the repository root, or `npm rebuild -w @braid/gateway-core` (needs g++, make, python3 and Node headers)';
  if (path === undefined) throw new Error(`${hint}; looked for ${ADDON_PATH} above ${dirname(fileURLToPath(import.meta.url))}`);
  try {
    addon = createRequire(import.meta.url)(path) as BraidNativeAddon;
  } catch (err) {
    throw new Error(`${hint}; loading ${path} failed: ${(err as Error).message}`, { cause: err });
  }
  return addon;
}

/** Opens a TUN device (IFF_TUN | IFF_NO_PI, non-blocking, close-on-exec). Empty name: the kernel picks tunN. */
export function openTun(name: string): { fd: number; name: string } {
  return loadNative().openTun(name);
}

export function closeFd(fd: number): void {
  loadNative().closeFd(fd);
}

/** SO_BINDTODEVICE: the socket sends and receives only through `ifname` ('' removes the binding). */
export function setBindToDevice(fd: number, ifname: string): void {
  loadNative().setBindToDevice(fd, ifname);
}

/** SO_MARK: packets from the socket carry this fwmark (policy routing, nftables). Needs CAP_NET_ADMIN. */
export function setMark(fd: number, mark: number): void {
  loadNative().setMark(fd, mark);
}

/** IP_MTU_DISCOVER (and IPV6_MTU_DISCOVER for IPv6 sockets). 'do' sets DF and reports EMSGSIZE. */
export function setMtuDiscover(fd: number, mode: MtuDiscoverMode): void {
  loadNative().setMtuDiscover(fd, mode);
}

/** SO_ORIGINAL_DST: the IPv4 destination of a connection that nftables `redirect` sent to us. */
export function originalDst(fd: number): { address: string; port: number } {
  return loadNative().originalDst(fd);
}

interface HandleWithFd { fd?: unknown }

/** fd of a connected node:net socket (its handle's fd; throws a clear error if unavailable). */
export function tcpSocketFd(sock: NetSocket): number {
  // net.Socket exposes no fd; its libuv handle does (Linux). `_handle` on net sockets is not
  // deprecated (only dgram's is), but it is undocumented: check what we read.
  const handle = (sock as unknown as { _handle?: HandleWithFd | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('tcpSocketFd: the socket has no fd (closed, or not a TCP socket)');
  return fd;
}

/** fd of a bound node:dgram socket (uses the handle's fd; throws a clear error if unavailable). */
export function socketFd(sock: Socket): number {
  // dgram keeps its UDP handle in a state object under an unexported symbol. Reading it there
  // avoids the deprecated `_handle` getter (DEP0112), which prints a warning.
  const stateKey = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol');
  const state = stateKey === undefined ? undefined : (sock as unknown as Record<symbol, { handle?: HandleWithFd | null } | undefined>)[stateKey];
  const handle = state !== undefined ? state.handle : (sock as unknown as { _handle?: HandleWithFd | null })._handle;
  if (handle === null || handle === undefined) throw new Error('socketFd: the dgram socket is closed');
  const fd = handle.fd;
  if (typeof fd !== 'number') throw new Error('socketFd: this Node version does not expose the dgram handle fd');
  if (fd < 0) throw new Error('socketFd: the dgram socket has no fd yet; call it after bind() has completed');
  return fd;
}
