// Run inside an edge's namespace with that edge's certificate: registers real intents at the
// cloud's rendezvous and then dials a lending edge's sharing listener the way an attacker or a
// confused peer would: an expired (stale) intent with its real secret, a live intent without its
// secret (forged), an intent id nobody registered. Prints what the listener answered, as JSON.
//   node --import tsx test/harness/rendezvous-probe.ts CLOUD CA CERT KEY SERVERNAME TARGET_ID HOST:PORT
import net from 'node:net';
import { createHmac, randomBytes } from 'node:crypto';
import { FrameDecoder, RendezvousClient, frame, parseHostPort } from '@braid/gateway-core';

const [cloud, ca, cert, key, serverName, targetId, lender] = process.argv.slice(2) as [string, string, string, string, string, string, string];
const to = parseHostPort(lender);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function dial(intent: string, secret: Buffer, from: string): Promise<unknown[]> {
  const sock = net.connect({ host: to.host, port: to.port });
  const msgs: Record<string, unknown>[] = [];
  const dec = new FrameDecoder((f) => msgs.push(JSON.parse(f.toString()) as Record<string, unknown>));
  sock.on('data', (c: Buffer) => dec.push(c));
  sock.on('error', () => undefined);
  await new Promise<void>((r, j) => { sock.once('connect', () => r()); sock.once('error', j); });
  const nonce = randomBytes(16).toString('hex');
  sock.write(frame(Buffer.from(JSON.stringify({ t: 'hello', v: 1, intent, from, mode: 'forward', nonce }))));
  const end = Date.now() + 6000;
  while (msgs.length === 0 && Date.now() < end) await sleep(10);
  const first = msgs[0];
  if (first?.['t'] === 'auth') {
    const proof = createHmac('sha256', secret).update(`dialer|${intent}|forward|${nonce}|${String(first['nonce'])}`).digest('hex');
    sock.write(frame(Buffer.from(JSON.stringify({ t: 'auth', proof }))));
    while (msgs.length < 2 && Date.now() < end) await sleep(10);
  }
  sock.destroy();
  return msgs;
}

const client = await RendezvousClient.open({ target: cloud, tls: { ca, cert, key }, serverName });
const me = process.env['PROBE_ID'] ?? 'edge-a';
const out: Record<string, unknown> = {};
// Stale: the real secret, but the intent expired before the dial.
const stale = await client.register({ targetId, listener: { host: '127.0.0.1', port: 9 }, ttlMs: 1000, reverseAfterMs: 1000 });
await sleep(1500);
out['stale'] = await dial(stale.intentId, stale.secret, me);
// Forged: a live intent, proved with a secret that is not its own.
const live = await client.register({ targetId, listener: { host: '127.0.0.1', port: 9 }, ttlMs: 20_000, reverseAfterMs: 20_000 });
await sleep(300);
out['forged'] = await dial(live.intentId, randomBytes(32), me);
// Unknown: an intent id nobody registered.
out['unknown'] = await dial(randomBytes(16).toString('hex'), randomBytes(32), me);
await client.resolve(live.intentId, 'INTENT_OUTCOME_CANCELLED').catch(() => undefined);
client.close();
console.log(JSON.stringify(out));
