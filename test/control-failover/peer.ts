// One side of the control-plane failover test (control-failover.it.test.ts), run inside a
// network namespace. Prints one line per thing the test waits for.
//
//   peer.ts cloud CERTS LISTEN          PolicyService + SessionService; SIGUSR2: a new global policy
//   peer.ts edge CERTS REMOTE IF,IF...  a PolicyClient through the CarrierRelay and one direct
//                                       (kernel routing); SIGUSR2: a Hello over each
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  CarrierRelay, createPolicyService, FilePolicyStore, PolicyClient, PROTOCOL_VERSION, sendHello, startControlServer, type TlsFiles,
} from '@braid/gateway-core';

const [mode, certs, addr, ifs] = process.argv.slice(2);
if (!mode || !certs || !addr) throw new Error('usage: peer.ts cloud|edge CERTS ADDR [IFACES]');
const tls = (name: string): TlsFiles => ({ ca: join(certs, 'ca.pem'), cert: join(certs, `${name}.pem`), key: join(certs, `${name}.key`) });
const say = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

if (mode === 'cloud') {
  const store = await FilePolicyStore.open();
  let beta = 1;
  await store.setGlobal({ schedule: { beta } });
  const svc = createPolicyService({ store, heartbeatMs: 300, onAck: (edge, ack) => {
    const st = svc.edges().find((e) => e.edgeId === edge);
    say(`ACK edge=${edge} result=${ack.result} version=${ack.version} from=${st?.address ?? '?'}`);
  } });
  const server = await startControlServer({
    listen: addr, tls: tls('cloud'), services: [svc.service],
    onHello: async (req, peer) => {
      say(`HELLO edge=${req.edgeId} from=${peer.address}`);
      return {
        sessionId: 7, cipher: req.ciphers[0] ?? 'aes-256-gcm', edgeToCloudKey: randomBytes(32), cloudToEdgeKey: randomBytes(32),
        dataEndpoint: { host: '198.18.0.1', port: 7000 }, tunnelAddress: '100.64.0.2', tunnelPrefixLen: 24, tunnelMtu: 1400, keepaliveMs: 250,
      };
    },
  });
  process.on('SIGUSR2', () => {
    beta++;
    void store.setGlobal({ schedule: { beta } }).then(() => say(`SET version=${store.effective('edge-1').version} beta=${beta}`));
  });
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
  say(`CLOUD listening ${addr}`);
} else {
  const carriers = (ifs ?? '').split(',').filter(Boolean).map((i) => ({ name: i, interface: i }));
  const relay = await CarrierRelay.start({ remote: addr, carriers, connectTimeoutMs: 2000, staggerMs: 100 });
  const common = { tls: tls('edge'), serverName: relay.serverName, heartbeatMs: 300, keepaliveMs: 1000, backoff: { initialMs: 100, maxMs: 500 } };
  const viaRelay = new PolicyClient({
    ...common, target: relay.target,
    apply: (r) => say(`APPLIED via=relay version=${r.version} beta=${r.policy.schedule.beta} carrier=${relay.stats.lastCarrier}`),
  });
  const direct = new PolicyClient({ ...common, target: addr, apply: (r) => say(`APPLIED via=direct version=${r.version} beta=${r.policy.schedule.beta}`) });
  viaRelay.start();
  direct.start();
  const hello = async (target: string, label: string): Promise<void> => {
    const t0 = Date.now();
    try {
      const r = await sendHello({ target, tls: tls('edge'), serverName: relay.serverName, deadlineMs: 3000 }, {
        edgeId: 'edge-1', softwareVersion: 'test', protocolVersion: PROTOCOL_VERSION, ciphers: ['aes-256-gcm'], carriers: [],
      });
      say(`HELLO via=${label} ok session=${r.sessionId} ms=${Date.now() - t0} carrier=${label === 'relay' ? relay.stats.lastCarrier : 'kernel'}`);
    } catch (e) {
      say(`HELLO via=${label} failed ms=${Date.now() - t0} ${(e as Error).message.split('\n')[0]}`);
    }
  };
  process.on('SIGUSR2', () => void Promise.all([hello(relay.target, 'relay'), hello(addr, 'direct')]));
  process.on('SIGTERM', () => {
    viaRelay.stop();
    direct.stop();
    relay.close();
    process.exit(0);
  });
  say(`EDGE relay ${relay.target}`);
}
