// The addon's checks that need no privileges: argument validation, errno errors that name the
// option and the fd, socket options that any user may set, socketFd. The TUN device itself and
// the privileged options are exercised in native.it.test.ts inside a network namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readlinkSync } from 'node:fs';
import { closeFd, loadNative, openTun, setBindToDevice, setMark, setMtuDiscover, socketFd, type MtuDiscoverMode } from '../src/native/index.js';

// An fd number that is certainly not open in this process.
const BAD_FD = 1_000_000;

async function boundSocket(type: 'udp4' | 'udp6'): Promise<dgram.Socket> {
  const sock = dgram.createSocket(type);
  sock.bind(0, type === 'udp4' ? '127.0.0.1' : '::1');
  await once(sock, 'listening');
  return sock;
}

test('the addon loads and exposes its functions', () => {
  const n = loadNative();
  for (const f of ['openTun', 'closeFd', 'tunWrite', 'tunWriteBatch', 'pollStart', 'pollStop', 'setBindToDevice', 'setMark', 'setMtuDiscover'] as const) {
    assert.equal(typeof n[f], 'function', f);
  }
});

test('errno errors carry code, errno, syscall and say which call and fd', () => {
  assert.throws(() => closeFd(BAD_FD), (e: NodeJS.ErrnoException) => {
    assert.equal(e.code, 'EBADF');
    assert.equal(e.errno, -9);
    assert.equal(e.syscall, 'close');
    assert.match(e.message, /close\(fd 1000000\) failed: EBADF \(Bad file descriptor\)/);
    return true;
  });
  assert.throws(() => setMark(BAD_FD, 7), { code: 'EBADF', message: /SO_MARK 7, fd 1000000/ });
  assert.throws(() => setBindToDevice(BAD_FD, 'lo'), { code: 'EBADF', message: /SO_BINDTODEVICE "lo", fd 1000000/ });
  assert.throws(() => setMtuDiscover(BAD_FD, 'do'), { code: 'EBADF', message: /IP_MTU_DISCOVER 'do', fd 1000000/ });
  assert.throws(() => loadNative().tunWrite(BAD_FD, Buffer.alloc(20)), { code: 'EBADF', message: /write\(TUN fd 1000000/ });
});

test('arguments of the wrong type or range are TypeErrors, not crashes', () => {
  const n = loadNative();
  const bad = (f: () => unknown, re: RegExp) => assert.throws(f, (e: Error) => e instanceof TypeError && re.test(e.message));
  // Deliberately ill-typed calls, as untyped JavaScript could make them.
  const loose = n as unknown as Record<string, (...args: unknown[]) => unknown>;
  bad(() => closeFd(-1), /non-negative integer/);
  bad(() => closeFd(1.5), /non-negative integer/);
  bad(() => loose.closeFd!('3'), /fd must be a number/);
  bad(() => setMark(0, -1), /unsigned 32-bit/);
  bad(() => setMark(0, 2 ** 32), /unsigned 32-bit/);
  bad(() => setMtuDiscover(0, 'sometimes' as MtuDiscoverMode), /'dont', 'do', 'probe' or 'want'/);
  bad(() => loose.tunWrite!(0, 'not a buffer'), /Buffer/);
  bad(() => loose.tunWriteBatch!(0, [Buffer.alloc(1), 'x']), /packets\[1\]/);
  bad(() => loose.pollStart!(0, 'no callback'), /callback/);
  bad(() => n.pollStart(0, () => {}, 0), /batchLimit/);
  assert.equal(n.pollStop(123456), false, 'stopping an unknown poll is a no-op');
});

test('interface names longer than 15 bytes are refused before any system call', () => {
  const long = 'braid-too-long-0';
  assert.equal(long.length, 16);
  assert.throws(() => openTun(long), { code: 'ERR_IFNAME_TOO_LONG', message: /"braid-too-long-0" is too long \(at most 15 bytes\)/ });
  assert.throws(() => setBindToDevice(0, long), { code: 'ERR_IFNAME_TOO_LONG' });
});

test('socketFd returns the fd of a bound dgram socket and refuses unbound or closed ones', async () => {
  const unbound = dgram.createSocket('udp4');
  assert.throws(() => socketFd(unbound), /after bind\(\)/);
  unbound.close();

  const sock = await boundSocket('udp4');
  const fd = socketFd(sock);
  assert.ok(fd > 2);
  assert.match(readlinkSync(`/proc/self/fd/${fd}`), /^socket:\[\d+\]$/);
  sock.close();
  assert.throws(() => socketFd(sock), /closed/);
});

test('IP_MTU_DISCOVER accepts every mode on IPv4 and IPv6 sockets', async () => {
  for (const type of ['udp4', 'udp6'] as const) {
    const sock = await boundSocket(type);
    try {
      for (const mode of ['dont', 'do', 'probe', 'want'] as const) setMtuDiscover(socketFd(sock), mode);
    } finally {
      sock.close();
    }
  }
});

test('a socket with IP_MTU_DISCOVER "do" still delivers ordinary datagrams', async () => {
  // The effect of each mode (EMSGSIZE versus fragmentation) needs an interface whose MTU can be
  // lowered, which needs root: see native.it.test.ts.
  const sock = await boundSocket('udp4');
  const rx = await boundSocket('udp4');
  try {
    setMtuDiscover(socketFd(sock), 'do');
    sock.send(Buffer.from('small'), rx.address().port, '127.0.0.1');
    const [msg] = await once(rx, 'message') as [Buffer];
    assert.equal(msg.toString(), 'small');
  } finally {
    sock.close();
    rx.close();
  }
});
