// The cloud gateway: accepts edge sessions over the mTLS control plane, merges each session's
// paths back into one packet stream written to its TUN (and from there NATed out), and sends
// return traffic back over the edge's paths, to the addresses its authenticated packets came
// from (so NAT rebinding on a carrier is followed).
import { randomBytes, randomInt } from 'node:crypto';
import {
  ControlError, DropCounters, tunStatsOf, Session, StreamListener, Telemetry, startGatewayAdminApi, TunDevice, UdpListener, UdpPeerPath, configureTun, contextFromHeaders, engineOptions,
  ipv4Destination, numberToIpv4, taggedSessionId, parseHostPort, peekSessionId, realClock, startAdminServer, startControlServer,
  type AdminServer, type CarrierInfo, type Clock, type CloudConfig, type ControlServer, type HelloReply, type HelloRequest, type Logger,
  type Path, type PeerIdentity, type TelemetryView,
} from '@braid/gateway-core';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { FileStateStore, Fleet, MemoryStateStore, telemetryService, type TelemetryServiceHandle } from '@braid/gateway-core';
import { cloudPolicyAdmin, startCloudPolicy, type CloudPolicy } from '@braid/gateway-core';
import { deleteRoute, setRouteMtu, startGatewayPmtu, type GatewayPmtu } from '@braid/gateway-core';
import { createRendezvousService, type RendezvousServiceHandle } from '@braid/gateway-core';
import { AddressPool } from './address-pool.js';
import { installEgress, removeEgress } from './egress.js';
import { startCluster, type Cluster } from './cluster.js';
import { DestinationProber, popService } from '@braid/gateway-core';
import { RelayedPeerPath } from './forward.js';
import { networkInterfaces } from 'node:os';
import { TcpRelay, relayDialer, isRelayFrame, ipv4ToNumber, cidrContains, parseCidr, type Cidr } from '@braid/gateway-core';

/** gRPC status codes used here (see @grpc/grpc-js status). */
const PERMISSION_DENIED = 7;
const RESOURCE_EXHAUSTED = 8;

interface CloudSession {
  session: Session;
  /** Stops the edge's policy from following this session's downlink (policy-cloud.ts). */
  policyDetach?: (() => void) | undefined;
  edgeId: string;
  address: number;
  peer: PeerIdentity;
  createdAt: number;
  carriers: CarrierInfo[];
  /** Path MTU discovery cloud -> edge (sets the MTU of the route to the edge's tunnel address). */
  pmtu?: GatewayPmtu;
  /** The session's relayed TCP connections (relay/, docs/tcp-relay.md); undefined when dataPlane.tcpRelay.enabled is false. */
  relay?: TcpRelay;
}

/** The version reported in telemetry (service.version). */
const VERSION = '0.1.0';

export class CloudGateway {
  private tun: TunDevice | undefined;
  private listener: UdpListener | undefined;
  /** TCP and TLS data-plane listeners (S0 racing fallbacks): each connection is one path. */
  private readonly streamListeners: StreamListener[] = [];
  private control: ControlServer | undefined;
  private admin: AdminServer | undefined;
  private readonly pool: AddressPool;
  private readonly sessions = new Map<number, CloudSession>();
  private readonly byAddress = new Map<number, CloudSession>();
  private readonly byEdge = new Map<string, CloudSession>();
  private readonly drops = new DropCounters();
  private started = false;
  private stopping = false;
  private telemetry: Telemetry | undefined;
  private adminApi: ControlServer | undefined;
  /** Telemetry from the edges and what the cloud derives from it (gateway-core/src/fleet, docs/telemetry.md). */
  private fleet: Fleet | undefined;
  private telemetrySvc: TelemetryServiceHandle | undefined;
  /** S1 rendezvous for edges that dial each other (gateway-core/src/rendezvous, docs/rendezvous.md). */
  rendezvous: RendezvousServiceHandle | undefined;
  /** Policy store, policy file and PolicyService (docs/policy.md); the fleet's overlays go into the store. */
  private policy: CloudPolicy | undefined;
  /** Several replicas: discovery and forwarding to a session's owner (undefined when alone). */
  private cluster: Cluster | undefined;
  /** S2-13: this PoP's delay to the destinations edges ask about (braid.v1.PopService). */
  private readonly prober = new DestinationProber();
  /** dataPlane.tcpRelay.refuseDestinations, parsed. */
  private readonly relayRefused: Cidr[];

  constructor(private readonly cfg: CloudConfig, private readonly log: Logger, private readonly clock: Clock = realClock) {
    this.relayRefused = cfg.dataPlane.tcpRelay.refuseDestinations.map((c) => parseCidr(c));
    this.pool = new AddressPool(cfg.tunnel.addressPool);
  }

  async start(): Promise<void> {
    const cfg = this.cfg;
    const view = this.telemetryView();
    this.telemetry = Telemetry.start({ role: 'cloud', id: cfg.id, version: VERSION, settings: cfg.telemetry, view, logger: this.log });
    const tm = this.telemetry;
    const policy = (this.policy = await startCloudPolicy(cfg.policy, this.log));
    this.adminApi = await startGatewayAdminApi(cfg.admin, cfg.control.tls, { role: 'cloud', id: cfg.id, version: VERSION, ready: () => this.started }, view, tm.events, this.log,
      cloudPolicyAdmin(policy.store, () => policy.service.edges()));
    if (cfg.admin.listen) {
      const { host, port } = parseHostPort(cfg.admin.listen);
      this.admin = await startAdminServer(host, port, {
        status: () => this.status(), ready: () => this.started, started: () => this.started,
        telemetry: { prometheus: tm.prometheusHandler, events: tm.events, history: tm.history, dashboard: tm.settings.dashboard },
      });
    }
    this.tun = TunDevice.open(cfg.tunnel.device);
    await configureTun(this.tun.name, this.pool.gateway, this.pool.prefix, cfg.tunnel.mtu);
    await installEgress(this.tun.name, cfg.tunnel.addressPool, cfg.egress.nat, cfg.egress.interface, this.log);
    this.tun.onPackets((pkts) => {
      for (const p of pkts) this.fromTun(p);
    });
    const data = parseHostPort(cfg.dataPlane.listen);
    this.listener = await UdpListener.open(data.host, data.port, cfg.dataPlane.pmtu.enabled ? 'probe' : undefined);
    this.listener.onDatagram((d, from) => this.fromNetwork(d, from));
    this.cluster = await startCluster(cfg, this.listener, this.drops, this.log, (d, edge, relay) => this.fromNetwork(d, edge, undefined, relay));
    await this.openStreamListeners();
    const fl = cfg.fleet;
    this.fleet = new Fleet({
      store: fl.stateFile ? new FileStateStore(resolve(fl.stateFile)) : new MemoryStateStore(), sink: policy.store,
      samplesPerCarrier: fl.historySamples, logger: this.log,
    });
    await this.fleet.start();
    this.prober.start();
    this.telemetrySvc = telemetryService({ fleet: this.fleet, maxStreams: fl.maxReportingEdges, logger: this.log });
    this.control = await startControlServer({
      services: [this.telemetrySvc.service, policy.service.service, (this.rendezvous = createRendezvousService({ logger: this.log })).service, popService(this.prober)],
      listen: cfg.control.listen,
      tls: cfg.control.tls,
      logger: this.log,
      onHello: (req, peer, headers) => this.tracedHello(req, peer, headers),
    });
    this.started = true;
    this.log.info({ control: cfg.control.listen, data: `${data.host}:${this.listener.port}`, pool: cfg.tunnel.addressPool }, 'cloud started');
  }

  /** onHello inside a server span that continues the edge's trace (W3C traceparent in the call's metadata). */
  private async tracedHello(req: HelloRequest, peer: PeerIdentity, headers: Record<string, string>): Promise<HelloReply> {
    const tm = this.telemetry;
    if (!tm) return this.onHello(req, peer);
    const parent = contextFromHeaders(headers);
    const span = tm.startSpan('braid.v1.SessionService/Hello', {
      'rpc.system': 'grpc', 'rpc.service': 'braid.v1.SessionService', 'rpc.method': 'Hello', 'braid.edge.id': req.edgeId, 'client.address': peer.address,
    }, parent, 'server');
    const ctx = tm.contextOf(span, parent);
    const t0 = performance.now();
    try {
      const reply = await tm.run(ctx, () => this.onHello(req, peer));
      tm.recordRpc('Hello', 'server', (performance.now() - t0) / 1000, 0);
      span.setAttribute('braid.session.id', String(reply.sessionId));
      tm.bindSession(reply.sessionId, ctx);
      tm.event({
        kind: 'session.established', sessionId: reply.sessionId,
        message: `session ${reply.sessionId} established with edge ${req.edgeId} (tunnel ${reply.tunnelAddress})`,
        attributes: { 'braid.edge.id': req.edgeId, 'braid.tunnel.address': reply.tunnelAddress },
      });
      span.end();
      return reply;
    } catch (e) {
      tm.recordRpc('Hello', 'server', (performance.now() - t0) / 1000, e instanceof ControlError ? e.code : 2);
      tm.fail(span, e);
      throw e;
    }
  }

  private async onHello(req: HelloRequest, peer: PeerIdentity): Promise<HelloReply> {
    // The certificate is the identity: an edge may not speak for another one.
    if (req.edgeId !== peer.commonName) {
      throw new ControlError(PERMISSION_DENIED, `edge id "${req.edgeId}" does not match its certificate (CN=${peer.commonName})`);
    }
    // A new hello from the same edge replaces its old session (the edge restarted).
    const old = this.byEdge.get(req.edgeId);
    if (old) this.endSession(old, 'replaced by a new hello');
    if (this.sessions.size >= this.cfg.maxSessions) {
      throw new ControlError(RESOURCE_EXHAUSTED, `cloud is at its session limit (${this.cfg.maxSessions})`);
    }
    const address = this.pool.allocate();
    if (address === undefined) throw new ControlError(RESOURCE_EXHAUSTED, 'tunnel address pool exhausted');
    let id = 0;
    const cluster = this.cluster;
    // With peers, the id names this replica as the owner (k8s/ownership.ts: taggedSessionId).
    while (id === 0 || this.sessions.has(id)) id = cluster ? taggedSessionId(cluster.tag, randomInt) : randomInt(1, 2 ** 32 - 1);
    const edgeToCloud = randomBytes(32);
    const cloudToEdge = randomBytes(32);
    const dp = this.cfg.dataPlane;
    const pmtu = this.tun && startGatewayPmtu({
      settings: dp.pmtu, tunnelMtu: this.cfg.tunnel.mtu, pathNames: req.carriers.map((c) => c.name), clock: this.clock, sessionId: id,
      sendProbe: (i, size) => this.sessions.get(id)?.session.sendPaddedProbe(i, size), kindOf: (i) => this.sessions.get(id)?.session.transportOf(i)?.kind,
      apply: setRouteMtu(this.tun.name, numberToIpv4(address)), target: `route to ${numberToIpv4(address)}`,
      event: (e) => this.telemetry?.event(e), log: this.log.child({ edge: req.edgeId }),
    });
    const session = new Session({
      pmtu: pmtu?.discovery,
      sessionId: id,
      sendKey: cloudToEdge,
      recvKey: edgeToCloud,
      pathNames: req.carriers.map((c) => c.name),
      clock: this.clock,
      ...engineOptions(dp),
      pathTypes: req.carriers.map((c) => c.metadata['technology'] ?? 'cellular'),
      keepaliveMs: dp.keepaliveMs,
      ackIntervalMs: dp.ackIntervalMs,
      ackEveryPackets: dp.ackEveryPackets,
      pathDeadMs: dp.pathDeadMs,
      reorder: dp.reorder,
      replayWindow: dp.replayWindow,
      deliver: (ip) => {
        if (isRelayFrame(ip)) {
          if (cs.relay) cs.relay.receive(ip);
          else this.drops.add('relay-malformed');
          return;
        }
        pmtu?.clampDelivered(ip);
        this.toTun(ip);
      },
      logger: this.log.child({ edge: req.edgeId }),
      drops: this.drops,
    });
    const cs: CloudSession = { session, edgeId: req.edgeId, address, peer, createdAt: Date.now(), carriers: req.carriers, pmtu };
    const rc = dp.tcpRelay;
    if (rc.enabled) {
      cs.relay = new TcpRelay({
        role: 'cloud', session, clock: this.clock, mtu: () => cs.pmtu?.discovery.tunnelMtu ?? this.cfg.tunnel.mtu,
        windowBytes: rc.windowBytes, maxStreams: rc.maxStreams, deadPeerMs: rc.deadPeerMs,
        dial: relayDialer({ connectTimeoutMs: rc.connectTimeoutMs, refused: (a) => this.relayRefuses(a), log: this.log }),
        drops: this.drops, log: this.log.child({ edge: req.edgeId, relay: true }),
      });
    }
    cs.policyDetach = this.policy?.attachSession(req.edgeId, session, req.carriers.map((c) => c.name));
    this.sessions.set(id, cs);
    this.byAddress.set(address, cs);
    this.byEdge.set(req.edgeId, cs);
    const listen = parseHostPort(dp.listen);
    this.log.info({ edge: req.edgeId, session: id, from: peer.address, tunnelAddress: numberToIpv4(address), carriers: req.carriers.map((c) => `${c.name}(${c.interface})`) }, 'session established');
    return {
      sessionId: id,
      cipher: 'aes-256-gcm',
      edgeToCloudKey: edgeToCloud,
      cloudToEdgeKey: cloudToEdge,
      // An empty host tells the edge to use the host it reached the control plane at.
      dataEndpoint: { host: dp.publicHost ?? (listen.host === '0.0.0.0' || listen.host === '::' ? '' : listen.host), port: dp.publicPort ?? this.listener?.port ?? listen.port },
      tunnelAddress: numberToIpv4(address),
      tunnelPrefixLen: 32,
      tunnelMtu: this.cfg.tunnel.mtu,
      keepaliveMs: dp.keepaliveMs,
      tcpRelay: rc.enabled,
    };
  }

  /**
   * A destination the cloud never dials for an edge: the configured list and the cloud's own
   * addresses (its admin and control ports, a pod's loopback), which a tunnel packet could not
   * reach either.
   */
  private relayRefuses(address: string): boolean {
    const n = ipv4ToNumber(address);
    if (this.relayRefused.some((c) => cidrContains(c, n))) return true;
    if (cidrContains(parseCidr(this.cfg.tunnel.addressPool), n)) return true;
    return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.family === 'IPv4' && i.address === address));
  }

  private endSession(cs: CloudSession, why: string): void {
    cs.policyDetach?.();
    cs.relay?.close();
    cs.session.close();
    const tunName = this.tun?.name;
    if (cs.pmtu && tunName) void cs.pmtu.stop().then(() => deleteRoute(tunName, numberToIpv4(cs.address)));
    this.sessions.delete(cs.session.id);
    this.byAddress.delete(cs.address);
    if (this.byEdge.get(cs.edgeId) === cs) this.byEdge.delete(cs.edgeId);
    this.pool.release(cs.address);
    this.log.info({ edge: cs.edgeId, session: cs.session.id, why }, 'session ended');
    this.telemetry?.event({ kind: 'session.ended', sessionId: cs.session.id, message: `session ${cs.session.id} of edge ${cs.edgeId} ended: ${why}`, attributes: { 'braid.edge.id': cs.edgeId } });
    this.telemetry?.unbindSession(cs.session.id);
  }

  /**
   * A datagram that arrives on a TCP or TLS connection goes through the same demultiplexer and
   * authentication as UDP; the connection it came on is the path's transport for the answers.
   */
  private async openStreamListeners(): Promise<void> {
    const dp = this.cfg.dataPlane;
    const specs = [
      { kind: 'tcp' as const, listen: dp.tcpListen },
      { kind: 'tls' as const, listen: dp.tlsListen },
    ];
    for (const spec of specs) {
      if (!spec.listen) continue;
      const { host, port } = parseHostPort(spec.listen);
      let l: StreamListener;
      try {
        const tls = spec.kind === 'tls'
          ? { cert: await readFile(this.cfg.control.tls.cert), key: await readFile(this.cfg.control.tls.key) }
          : undefined;
        l = await StreamListener.open({ kind: spec.kind, host, port, ...(tls ? { tls } : {}) });
      } catch (e) {
        // A fallback transport that cannot listen (port taken, no CAP_NET_BIND_SERVICE for 443)
        // must not take UDP service down with it: carriers that pass UDP still work.
        this.log.error({ kind: spec.kind, listen: spec.listen, err: (e as Error).message }, 'data-plane stream listener unavailable');
        continue;
      }
      l.onConnection((conn) => {
        const from = { address: conn.remoteAddress, port: conn.remotePort };
        conn.onDatagram((d) => this.fromNetwork(d, from, conn));
      });
      this.streamListeners.push(l);
      this.log.info({ kind: spec.kind, listen: `${host}:${l.port}` }, 'data-plane stream listener open');
    }
  }

  /** `relay`: the replica that forwarded the datagram (the edge's path reaches the cluster there). */
  private fromNetwork(d: Buffer, from: { address: string; port: number }, via?: Path, relay?: string): void {
    const peek = peekSessionId(d);
    if (!peek.ok) {
      this.drops.add(peek.reason);
      return;
    }
    const cs = this.sessions.get(peek.sessionId);
    if (!cs) {
      // Another replica's session: hand it to its owner (only what arrived from an edge directly).
      if (relay === undefined && !via && this.cluster?.forwarder.toOwner(peek.sessionId, d, from)) return;
      this.drops.add('unknown-session');
      return;
    }
    cs.session.receive(d, (pathId, current) => this.learnPath(cs, pathId, current, from, via, relay));
  }

  /** Called only for authenticated, fresh packets: attach the path, or follow it to a new address. */
  private learnPath(cs: CloudSession, pathId: number, current: Path | undefined, from: { address: string; port: number }, via?: Path, relay?: string): Path | undefined {
    if (via) {
      // Arrived on a stream connection: answer on that connection.
      if (current !== via) this.log.info({ edge: cs.edgeId, path: pathId, transport: via.description }, 'path learned');
      return via;
    }
    if (relay !== undefined && this.cluster) {
      // Reached another replica first: answer back through it.
      if (current instanceof RelayedPeerPath) {
        if (current.moveTo(relay, from)) this.log.info({ edge: cs.edgeId, path: pathId, to: current.description }, 'path moved');
        return current;
      }
      const p = this.cluster.forwarder.pathVia(relay, from);
      this.log.info({ edge: cs.edgeId, path: pathId, address: p.description }, 'path learned');
      return p;
    }
    if (current instanceof UdpPeerPath) {
      const was = `${current.address}:${current.port}`;
      if (current.moveTo(from.address, from.port)) {
        this.log.info({ edge: cs.edgeId, path: pathId, from: was, to: `${from.address}:${from.port}` }, 'path moved (NAT rebinding)');
      }
      return current;
    }
    if (!this.listener) return undefined;
    this.log.info({ edge: cs.edgeId, path: pathId, address: `${from.address}:${from.port}` }, 'path learned');
    return new UdpPeerPath(this.listener, from.address, from.port);
  }

  private fromTun(p: Buffer): void {
    if (isRelayFrame(p)) {
      // Only the edge's relay makes relay frames; one from the network is a forgery.
      this.drops.add('relay-spoofed');
      return;
    }
    const dst = ipv4Destination(p);
    if (dst === undefined) {
      this.drops.add('not-ip');
      return;
    }
    const cs = this.byAddress.get(dst);
    if (!cs) {
      this.drops.add('no-session');
      return;
    }
    cs.session.send(p);
  }

  private toTun(ip: Buffer): void {
    if (this.tun && !this.tun.write(ip)) this.drops.add('tun-full');
  }

  status() {
    const paths = [...this.sessions.values()].flatMap((cs) => cs.session.status().map((p) => ({ ...p, session: cs.session.id, edge: cs.edgeId })));
    return {
      role: 'cloud' as const,
      id: this.cfg.id,
      ready: this.started,
      sessions: [...this.sessions.values()].map((cs) => ({
        id: cs.session.id, edge: cs.edgeId, tunnelAddress: numberToIpv4(cs.address), from: cs.peer.address,
        reorder: cs.session.reorderStats(), engine: cs.session.engineStats(),
        // Path MTU discovery cloud -> edge: the MTU of the route to this edge (null when off).
        tunnelMtu: cs.pmtu?.discovery.tunnelMtu ?? null,
        relay: cs.relay?.stats() ?? null,
      })),
      paths,
      tunnel: tunStatsOf(this.tun),
      drops: this.drops.toJSON(),
      cluster: this.cluster ? {
        self: this.cluster.selfAddress, discovery: this.cluster.discovery.kind, replicas: this.cluster.discovery.replicas().map((r) => r.address),
        forwarded: this.cluster.forwarder.forwarded, relayed: this.cluster.forwarder.relayed,
      } : null,
    };
  }

  private telemetryView(): TelemetryView {
    return {
      sessions: () => [...this.sessions.values()].map((cs) => ({
        id: cs.session.id,
        peer: cs.edgeId,
        paths: cs.session.status(),
        carriers: cs.carriers.map((c) => ({
          name: c.name, interface: c.interface, operator: c.metadata['operator'], mcc: c.metadata['mcc'], mnc: c.metadata['mnc'], technology: c.metadata['technology'],
        })),
        reorder: cs.session.reorderStats(),
        retransmitted: cs.session.retransmitted, redundantCopies: cs.session.redundantCopyCounts(),
        ...(cs.relay ? { relay: cs.relay.stats() } : {}),
      })),
      drops: () => this.drops.toJSON(),
      tunnel: () => (tunStatsOf(this.tun)),
    };
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    // The last metric export should still show the sessions that are about to end.
    await this.telemetry?.flush();
    this.policy?.service.close();
    await this.control?.close();
    await this.policy?.close();
    this.rendezvous?.close();
    this.prober.stop();
    await this.fleet?.close();
    for (const cs of [...this.sessions.values()]) this.endSession(cs, 'cloud stopping');
    this.cluster?.stop();
    this.listener?.close();
    for (const l of this.streamListeners) l.close();
    await removeEgress().catch(() => undefined);
    this.tun?.close();
    await this.admin?.close();
    await this.adminApi?.close();
    await this.telemetry?.shutdown();
    this.log.info('cloud stopped');
  }
}
