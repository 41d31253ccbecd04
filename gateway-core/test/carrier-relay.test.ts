// The control plane's carrier relay (control/carrier-relay.ts) on loopback: two carriers without
// interface pinning (so no root is needed; pinning itself is covered by
// test/control-failover.it.test.ts in namespaces). What is checked here is the relay's own
// bookkeeping: a carrier the data plane declares down loses its control connections at once, and
// the next connection goes over another carrier.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { CarrierRelay } from '../src/control/carrier-relay.js';

/** An echo server on loopback standing in for the cloud's control port. */
async function echoServer(): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((s) => s.pipe(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port };
}

async function connectThrough(relay: CarrierRelay): Promise<net.Socket> {
  const [host, port] = relay.target.split(':');
  const s = net.connect(Number(port), host);
  await once(s, 'connect');
  // An echoed byte proves the upstream connection was made and spliced.
  s.write('x');
  await once(s, 'data');
  return s;
}

test('carrierDown closes the control connections over that carrier, and the next one goes over another', async () => {
  const cloud = await echoServer();
  const relay = await CarrierRelay.start({ remote: `127.0.0.1:${cloud.port}`, carriers: [{ name: 'lte-a' }, { name: 'lte-b' }, { name: 'lte-c' }], staggerMs: 50 });
  try {
    const first = await connectThrough(relay);
    assert.equal(relay.stats.lastCarrier, 'lte-a', 'the preferred carrier wins while nothing failed');

    assert.equal(relay.carrierDown('lte-c'), 0, 'nothing runs over lte-c');
    assert.equal(first.destroyed, false, 'a connection over another carrier is left alone');

    const closed = once(first, 'close');
    assert.equal(relay.carrierDown('lte-a'), 1);
    await closed;

    await connectThrough(relay).then((s) => s.destroy());
    assert.equal(relay.stats.lastCarrier, 'lte-b', 'the carriers declared down are tried last');
    assert.deepEqual(relay.stats.byCarrier, { 'lte-a': 1, 'lte-b': 1 });
  } finally {
    relay.close();
    cloud.server.close();
  }
});
