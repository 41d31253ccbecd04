// The edge gateway: captures client packets on its TUN device, sends them over every carrier
// through one session with the cloud, and writes what the cloud sends back into the TUN.
//
//   start: open TUN -> Hello over mTLS (retry with backoff) -> one UDP path per carrier
//          -> session -> interception rules -> admin endpoint
import {
  DropCounters, tunStatsOf, Session, SessionCodec, Telemetry, startGatewayAdminApi, type ControlServer, TransportRacer, TunDevice, UdpCarrierPath, openTcpCarrierPath, openTlsCarrierPath, configureTun, engineOptions, parseHostPort, realClock, sendHello,
  startAdminServer, traceHeaders, ControlError, type AdminServer, type Clock, type EdgeConfig, type HelloReply, type Logger, type Path,
  type RacerStatus, type TelemetryView, type TraceContext,
} from '@braid/gateway-core';
import { readFile } from 'node:fs/promises';
import { startEdgeUplink, type EdgeUplink, type ReporterStats } from '@braid/gateway-core';
import { setLinkMtu, startGatewayPmtu, type GatewayPmtu, type PmtuPathStatus } from '@braid/gateway-core';
import { startEdgeSharing, type EdgeSharing, type EdgeSharingStatus } from '@braid/gateway-core';
import { installInterception, planFrom, removeInterception, type InterceptionPlan } from './interception.js';
import { VERSION } from './version.js';
import { EdgePolicy } from './policy-client.js';
import { CarrierRelay, edgePolicyAdmin } from '@braid/gateway-core';
import { CapUsage } from '@braid/gateway-core';
import { TcpRelay, isRelayFrame, startRelayListener, type RelayListener, type TcpRelayStats } from '@braid/gateway-core';
import { contextFromConfig, HighSpeedWatch, type CompositeSource, type ContextSnapshot } from '@braid/gateway-core';

export interface EdgeStatus {
  role: 'edge';
  id: string;
  ready: boolean;
  sessionId: number | null;
  tunnelAddress: string | null;
  /** Each path's status plus the kind of transport under it now (S0 racing: udp, tcp or tls). */
  paths: (ReturnType<Session['status']>[number] & { kind?: string | null })[];
  /** S0 racing per carrier: streams, states, weights and the decisions taken. */
  racing: RacerStatus[];
  tunnel: { rxPackets: number; txPackets: number; rxBytes: number; txBytes: number };
  reorder: ReturnType<Session['reorderStats']> | null;
  drops: Record<string, number>;
  /** Telemetry reports to the cloud: produced, acknowledged, queued, dropped, reconnects (null when uplink.enabled is false). */
  uplink: ReporterStats | null;
  /** S2-5: radio KPIs per carrier and the vehicle's motion, from context.sources; S2-12 mode. */
  context: ContextSnapshot & { highSpeed: boolean };
  /** Carrier sharing between edges: carriers lent (relay counters) and borrowed (links). */
  sharing: EdgeSharingStatus | null;
  /** Path MTU discovery: the tunnel MTU and each path's (null when dataPlane.pmtu.enabled is false). */
  pathMtu: { tunnelMtu: number; paths: PmtuPathStatus[] } | null;
  /** Split TCP (docs/tcp-relay.md): the session's relayed connections, and the listener's counts (null when not relaying). */
  tcpRelay: (TcpRelayStats & { accepted: number; refused: number }) | null;
}

/**
 * No path up for this long: say Hello again. A path is only declared down after pathDeadMs with
 * traffic or three unanswered keepalives when idle, so "all down" is already a confirmed loss;
 * waiting 1 s more rides out a blip shared by all carriers, and keeps a lost cloud replica's
 * re-homing (down 0.3 s + 1 s + the watchdog's 0.25 s tick + one Hello) within the 3 s budget
 * of docs/kubernetes.md. A needless Hello costs one new session, not an outage.
 */
const REHELLO_AFTER_MS = 1000;
/** A session none of whose paths has come up yet gets longer: S0 racing may still be trying TCP and TLS. */
const NEW_SESSION_GRACE_MS = 5000;
const WATCHDOG_TICK_MS = 250;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class EdgeGateway {
  private tun: TunDevice | undefined;
  private session: Session | undefined;
  /** Data-cap counts per carrier: outlive sessions (and, with dataPlane.capStateFile, restarts). */
  private capUsage: CapUsage | undefined;
  private reply: HelloReply | undefined;
  private admin: AdminServer | undefined;
  private plan: InterceptionPlan | undefined;
  private readonly paths: (Path | undefined)[] = [];
  private readonly racers: (TransportRacer | undefined)[] = [];
  private readonly drops = new DropCounters();
  private stopping = false;
  private started = false;
  private telemetry: Telemetry | undefined;
  /** The cloud's policy stream and what it puts in force (policy-client.ts). */
  private policy: EdgePolicy | undefined;
  /** control.viaCarriers: Hello and the policy stream go through it (any live carrier). */
  private controlRelay: CarrierRelay | undefined;
  private adminApi: ControlServer | undefined;
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private allDownSince: number | undefined;
  private sessionWasUp = false;
  private rehelloing = false;
  /** S2-5 context sources and the S2-12 high-speed switch on them (context.*). */
  private contextSource: CompositeSource | undefined;
  private highSpeed: HighSpeedWatch | undefined;
  private contextTimer: ReturnType<typeof setInterval> | undefined;
  /** Telemetry reports to the cloud (gateway-core/src/uplink, docs/telemetry.md). */
  private uplink: EdgeUplink | undefined;
  /** Path MTU discovery of the current session (sets the TUN's MTU). */
  private pmtu: GatewayPmtu | undefined;
  /** Edge-to-edge carrier sharing (gateway-core/src/sharing), when configured. */
  private sharing: EdgeSharing | undefined;
  /** Split TCP for the current session, when both ends have it on (relay/, docs/tcp-relay.md). */
  private relay: TcpRelay | undefined;
  private relayListener: RelayListener | undefined;

  constructor(private readonly cfg: EdgeConfig, private readonly log: Logger, private readonly clock: Clock = realClock) {}

  async start(): Promise<void> {
    const cfg = this.cfg;
    this.startContext();
    const view = this.telemetryView();
    this.telemetry = Telemetry.start({ role: 'edge', id: cfg.id, version: VERSION, settings: cfg.telemetry, view, logger: this.log });
    const tm = this.telemetry;
    if (cfg.control.viaCarriers) {
      this.controlRelay = await CarrierRelay.start({
        remote: cfg.control.cloud,
        // Every own carrier, pinned; then the kernel's route (no pinning) as the last candidate, so
        // that a cloud reachable only some other way (a wired uplink, a lab) is still reached.
        carriers: [...cfg.carriers.filter((c) => !c.lentBy).map((c) => ({ name: c.name, interface: c.interface })), { name: 'kernel-route', interface: undefined }],
        logger: this.log,
      });
      // A carrier the data plane declares down takes its control connections with it, so the
      // report saying so does not wait out the blackout on them (CarrierRelay.carrierDown).
      const relay = this.controlRelay;
      tm.events.subscribe((e) => {
        if (e.kind === 'path.down' && e.path) relay.carrierDown(e.path);
      });
    }
    // Telemetry up, through the carrier relay too when there is one.
    this.uplink = startEdgeUplink({ cfg, view, clock: this.clock, logger: this.log, transports: () => this.racers.map((r) => r?.kind), target: this.controlTarget() });
    // S2-5: reports carry the context (radio per carrier, motion).
    if (this.uplink) this.uplink.context = () => this.context();
    if (cfg.control.watchPolicy) {
      this.policy = new EdgePolicy({
        ...this.controlTarget(), tls: cfg.control.tls, carriers: cfg.carriers.map((c) => c.name), telemetry: () => this.telemetry, logger: this.log,
      });
    }
    const policy = this.policy;
    this.adminApi = await startGatewayAdminApi(cfg.admin, undefined, { role: 'edge', id: cfg.id, version: VERSION, ready: () => this.isReady() }, view, tm.events, this.log,
      policy ? edgePolicyAdmin(() => policy.status()) : undefined);
    policy?.start();
    if (cfg.admin.listen) {
      const { host, port } = parseHostPort(cfg.admin.listen);
      this.admin = await startAdminServer(host, port, {
        status: () => this.status(),
        ready: () => this.isReady(),
        started: () => this.started,
        telemetry: { prometheus: tm.prometheusHandler, events: tm.events, history: tm.history, dashboard: tm.settings.dashboard },
      });
    }
    // One span from the first Hello to traffic flowing; the cloud's side joins it (traceparent).
    const establish = tm.startSpan('braid.session.establish', { 'braid.edge.id': cfg.id, 'braid.cloud': cfg.control.cloud });
    establish.setAttribute('braid.role', 'edge');
    const establishCtx = tm.contextOf(establish);
    try {
      await tm.run(establishCtx, () => this.establish(establishCtx));
      establish.end();
    } catch (e) {
      tm.fail(establish, e);
      throw e;
    }
  }

  private async establish(establishCtx: TraceContext): Promise<void> {
    const cfg = this.cfg;
    this.tun = TunDevice.open(cfg.tunnel.device);
    this.reply = await this.helloWithRetry(establishCtx);
    const r = this.reply;
    // The session's later events (path up/down...) become spans of this trace.
    this.telemetry?.bindSession(r.sessionId, establishCtx);
    const mtu = Math.min(cfg.tunnel.mtu, r.tunnelMtu);
    await this.openSession(r);
    this.sharing = await startEdgeSharing(cfg, {
      cloudData: () => this.reply && { host: this.reply.dataEndpoint.host || parseHostPort(cfg.control.cloud).host, port: this.reply.dataEndpoint.port },
      attach: (i, p) => {
        p.onDatagram((d) => this.session?.receive(d));
        this.session?.setTransport(i, p);
      },
      logger: this.log,
    });
    this.tun.onPackets((pkts) => {
      const s = this.session;
      if (!s) return;
      for (const p of pkts) {
        // Only the relay makes relay frames; a client's packet that looks like one is a forgery.
        if (isRelayFrame(p)) this.drops.add('relay-spoofed');
        else s.send(p);
      }
    });
    await this.intercept();
    this.started = true;
    this.watchdog = setInterval(() => this.checkSession(), WATCHDOG_TICK_MS);
    this.watchdog.unref();
    this.telemetry?.event({
      kind: 'session.established', sessionId: r.sessionId,
      message: `session ${r.sessionId} established with ${cfg.control.cloud} (tunnel ${r.tunnelAddress})`,
      attributes: { 'braid.tunnel.address': r.tunnelAddress, 'braid.cloud': cfg.control.cloud },
    });
    this.log.info({ session: r.sessionId, tunnelAddress: r.tunnelAddress, mtu, data: `${r.dataEndpoint.host || parseHostPort(cfg.control.cloud).host}:${r.dataEndpoint.port}` }, 'edge started');
  }

  /**
   * Put the interception rules in force for the current cloud's answer. Client TCP goes to the
   * relay only when this edge and the cloud both relay (Hello's tcp_relay); otherwise it stays
   * end to end. A re-established session may come from a cloud that answers differently, so this
   * runs again after each Hello and changes the rules only when the answer changed.
   */
  private async intercept(): Promise<void> {
    if (!this.tun) return;
    const rc = this.cfg.dataPlane.tcpRelay;
    const relaying = rc.enabled && this.reply?.tcpRelay === true;
    if (relaying && !this.relayListener) this.relayListener = await startRelayListener(rc.port, () => this.relay, this.log);
    const plan = planFrom(this.cfg, this.tun.name, relaying ? this.relayListener?.port : undefined);
    if (this.plan && this.plan.relayPort === plan.relayPort) return;
    this.plan = plan;
    // Redirect removed before the listener closes: no client connection is sent to a closed port.
    await installInterception(plan, this.log);
    if (!relaying && this.relayListener) {
      await this.relayListener.close();
      this.relayListener = undefined;
    }
  }

  /** The session for a Hello reply: tunnel address, session, one raced path per carrier. */
  private async openSession(r: HelloReply): Promise<void> {
    const cfg = this.cfg;
    if (!this.tun) return;
    this.reply = r;
    await configureTun(this.tun.name, r.tunnelAddress, 32, Math.min(cfg.tunnel.mtu, r.tunnelMtu));
    const control = parseHostPort(cfg.control.cloud);
    const dataHost = r.dataEndpoint.host || control.host;
    this.allDownSince = undefined;
    this.sessionWasUp = false;
    await this.pmtu?.stop();
    const tun = this.tun;
    this.pmtu = startGatewayPmtu({
      settings: cfg.dataPlane.pmtu, tunnelMtu: Math.min(cfg.tunnel.mtu, r.tunnelMtu), pathNames: cfg.carriers.map((c) => c.name), clock: this.clock,
      sessionId: r.sessionId, sendProbe: (i, size) => this.session?.sendPaddedProbe(i, size), kindOf: (i) => this.racers[i]?.kind,
      apply: setLinkMtu(tun.name), target: `TUN ${tun.name}`, event: (e) => this.telemetry?.event(e), log: this.log,
    });
    this.session = new Session({
      pmtu: this.pmtu?.discovery,
      sessionId: r.sessionId,
      sendKey: r.edgeToCloudKey,
      recvKey: r.cloudToEdgeKey,
      pathNames: cfg.carriers.map((c) => c.name),
      clock: this.clock,
      ...engineOptions(cfg.dataPlane),
      pathTypes: cfg.carriers.map((c) => c.metadata?.technology ?? 'cellular'),
      keepaliveMs: r.keepaliveMs || cfg.dataPlane.keepaliveMs,
      ackIntervalMs: cfg.dataPlane.ackIntervalMs,
      ackEveryPackets: cfg.dataPlane.ackEveryPackets,
      pathDeadMs: cfg.dataPlane.pathDeadMs,
      reorder: cfg.dataPlane.reorder,
      replayWindow: cfg.dataPlane.replayWindow,
      deliver: (ip) => {
        if (isRelayFrame(ip)) {
          if (this.relay) this.relay.receive(ip);
          else this.drops.add('relay-malformed');
          return;
        }
        this.pmtu?.clampDelivered(ip);
        this.toTun(ip);
      },
      logger: this.log,
      drops: this.drops,
      pathPolicy: cfg.dataPlane.pathPolicy,
      capUsage: (this.capUsage ??= new CapUsage(cfg.dataPlane.capStateFile || undefined)),
    });
    this.relay?.close();
    const rc = cfg.dataPlane.tcpRelay;
    // A re-established session may come from a cloud that relays or not: follow its answer.
    this.relay = rc.enabled && r.tcpRelay ? new TcpRelay({
      role: 'edge', session: this.session, clock: this.clock, mtu: () => this.pmtu?.discovery.tunnelMtu ?? Math.min(cfg.tunnel.mtu, r.tunnelMtu),
      windowBytes: rc.windowBytes, maxStreams: rc.maxStreams, deadPeerMs: rc.deadPeerMs, drops: this.drops, log: this.log.child({ relay: true }),
    }) : undefined;
    this.applyHighSpeed();
    this.policy?.attach(this.session);
    await Promise.all(cfg.carriers.map((c, i) => this.openPath(i, c.interface, dataHost, r.dataEndpoint.port)));
    this.sharing?.reattach();
  }

  /**
   * Re-establishment: when no path has been up for REHELLO_AFTER_MS (the cloud restarted and
   * forgot the session, or every carrier was gone long enough), say Hello again over whichever
   * carrier routes to the control plane and rebuild the session; the interception rules stay,
   * except the TCP relay's redirect, which follows the new cloud's answer (intercept).
   */
  private checkSession(): void {
    const s = this.session;
    if (!s || this.stopping || this.rehelloing) return;
    const anyUp = s.status().some((p) => p.state === 'up');
    const now = Date.now();
    if (anyUp) {
      this.allDownSince = undefined;
      this.sessionWasUp = true;
      return;
    }
    this.allDownSince ??= now;
    const after = this.sessionWasUp ? REHELLO_AFTER_MS : Math.max(NEW_SESSION_GRACE_MS, 3 * (this.reply?.keepaliveMs || this.cfg.dataPlane.keepaliveMs));
    if (now - this.allDownSince < after) return;
    this.rehelloing = true;
    void this.rehello().finally(() => { this.rehelloing = false; });
  }

  private async rehello(): Promise<void> {
    const old = this.session;
    this.log.warn({ session: old?.id }, 'no path up: saying Hello again');
    this.telemetry?.event({ kind: 'session.ended', sessionId: old?.id, message: `session ${old?.id} lost: no path up; re-establishing` });
    this.session = undefined;
    // The relayed connections cannot outlive the session: their clients see a reset.
    this.relay?.close();
    this.relay = undefined;
    old?.close();
    for (const p of this.paths) p?.close();
    this.paths.length = 0;
    this.racers.length = 0;
    const tm = this.telemetry;
    if (!tm) return;
    const span = tm.startSpan('braid.session.reestablish', { 'braid.edge.id': this.cfg.id });
    try {
      const r = await this.helloWithRetry(tm.contextOf(span));
      span.end();
      if (this.stopping) return;
      await this.openSession(r);
      await this.intercept();
      this.telemetry?.event({ kind: 'session.established', sessionId: r.sessionId, message: `session ${r.sessionId} re-established (tunnel ${r.tunnelAddress})` });
      this.log.info({ session: r.sessionId, tunnelAddress: r.tunnelAddress }, 'session re-established');
    } catch (e) {
      tm.fail(span, e);
      if (!this.stopping) this.log.error({ err: (e as Error).message }, 're-establishment failed');
    }
  }

  /**
   * Each carrier's path is an S0 transport racer: UDP first, then TCP and TLS down the cascade
   * when no authenticated answer comes within the switch threshold. The session sees one Path per
   * carrier whatever transport is under it.
   */
  private async openPath(i: number, iface: string, host: string, port: number): Promise<void> {
    const r = this.reply;
    const session = this.session;
    // A carrier lent by another edge has no transport of ours: sharing attaches its path.
    if (!r || !session || this.cfg.carriers[i]?.lentBy) return;
    const name = this.cfg.carriers[i]?.name ?? String(i);
    const racing = this.cfg.dataPlane.racing;
    // Authenticity check for "connected": the session's keys, without touching its replay state.
    const codec = new SessionCodec(r.sessionId, r.edgeToCloudKey, r.cloudToEdgeKey);
    const connectTimeoutMs = Math.max(1000, racing.anomalyThresholdMs);
    let ca: Buffer | undefined;
    const racer = new TransportRacer({
      name,
      clock: this.clock,
      cascade: racing.cascade,
      switchThresholdMs: racing.switchThresholdMs,
      // The cloud may announce a longer keepalive than the edge's config assumed: an idle carrier
      // hears from it only that often, so the anomaly threshold never goes below three of them.
      anomalyThresholdMs: Math.max(racing.anomalyThresholdMs, 3 * (r.keepaliveMs || this.cfg.dataPlane.keepaliveMs)),
      weights: racing.weights,
      keepSeveralStreams: racing.keepSeveralStreams,
      logger: this.log,
      open: async (kind) => {
        if (kind === 'udp') return UdpCarrierPath.open({ interface: iface, remoteHost: host, remotePort: port, mtuDiscover: this.pmtu ? 'probe' : undefined });
        if (kind === 'tcp') return openTcpCarrierPath({ interface: iface, remoteHost: host, remotePort: racing.tcpPort ?? port, connectTimeoutMs });
        ca ??= await readFile(this.cfg.control.tls.ca);
        return openTlsCarrierPath({
          interface: iface, remoteHost: host, remotePort: racing.tlsPort, connectTimeoutMs, ca, serverName: this.cfg.control.serverName ?? host,
        });
      },
      isAuthentic: (d) => {
        const dec = codec.decode(d);
        return dec.ok && dec.packet.header.pathId === i;
      },
      // setTransport sends a probe at once: the new endpoint's connect request.
      requestProbe: () => this.session?.setTransport(i, racer),
    });
    racer.onDatagram((d) => this.session?.receive(d));
    for (const [type, stream] of Object.entries(racing.typeBindings)) if (stream !== undefined) racer.bindType(type, stream);
    this.paths[i] = racer;
    this.racers[i] = racer;
    session.setTransport(i, racer);
    racer.start();
  }

  private async helloWithRetry(parent: TraceContext): Promise<HelloReply> {
    const cfg = this.cfg;
    let delay = cfg.control.retryMs;
    for (;;) {
      const tm = this.telemetry;
      const span = tm?.startSpan('braid.v1.SessionService/Hello', { 'rpc.system': 'grpc', 'rpc.service': 'braid.v1.SessionService', 'rpc.method': 'Hello' }, parent, 'client');
      const t0 = performance.now();
      try {
        const reply = await sendHello(
          {
            ...this.controlTarget(), tls: cfg.control.tls, deadlineMs: cfg.control.helloTimeoutMs,
            headers: span && tm ? traceHeaders(tm.contextOf(span, parent)) : {},
          },
          {
            edgeId: cfg.id,
            softwareVersion: VERSION,
            protocolVersion: 1,
            ciphers: ['aes-256-gcm'],
            carriers: cfg.carriers.map((c) => ({
              name: c.name,
              interface: c.interface,
              metadata: Object.fromEntries(Object.entries(c.metadata ?? {}).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)])),
            })),
          },
        );
        tm?.recordRpc('Hello', 'client', (performance.now() - t0) / 1000, 0);
        span?.setAttribute('braid.session.id', String(reply.sessionId));
        span?.end();
        return reply;
      } catch (e) {
        tm?.recordRpc('Hello', 'client', (performance.now() - t0) / 1000, e instanceof ControlError ? e.code : 2);
        if (span && tm) tm.fail(span, e);
        if (this.stopping) throw e;
        this.log.error({ cloud: cfg.control.cloud, err: (e as Error).message, retryInMs: delay }, 'hello to cloud failed');
        // Backoff with jitter, capped at 30 s.
        await sleep(delay * (0.75 + Math.random() / 2));
        delay = Math.min(delay * 2, 30_000);
        if (this.stopping) throw new Error('stopped');
      }
    }
  }

  /**
   * S2-5: the sources of context.sources, merged. Never blocks or fails the start: a source that
   * cannot read (no mmcli, gpsd down) says so once in the log and the edge runs without it.
   */
  private startContext(): void {
    const c = this.cfg.context;
    const src = contextFromConfig(c, this.cfg.carriers, this.log);
    this.contextSource = src;
    this.highSpeed = new HighSpeedWatch(() => src.snapshot(), c.highSpeedKmh, (on, speedKmh) => {
      this.log.info({ speedKmh, thresholdKmh: c.highSpeedKmh }, on ? 'high-speed mode on (S2-12)' : 'high-speed mode off (S2-12)');
      this.applyHighSpeed();
    });
    src.onChange(() => this.highSpeed?.check());
    // Also on a timer: a speed that goes stale (gpsd gone) must switch the mode off.
    this.contextTimer = setInterval(() => this.highSpeed?.check(), 1000);
    this.contextTimer.unref();
    void src.start();
  }

  /** The latest context (S2-5): for the telemetry reporter and the status. */
  context(): ContextSnapshot {
    return this.contextSource?.snapshot() ?? { radio: [] };
  }

  /** S2-12: the session follows the high-speed state (short estimator windows, one more S4 copy). */
  private applyHighSpeed(): void {
    this.session?.setHighSpeedMode(this.highSpeed?.on ?? false);
  }

  private toTun(ip: Buffer): void {
    if (this.tun && !this.tun.write(ip)) this.drops.add('tun-full');
  }

  /**
   * Ready to carry client traffic: a session with a path up and the interception in force. Not
   * during a re-Hello, which may still be changing the relay's redirect (intercept): a client
   * connection begun while the rules are being replaced can be tracked on the wrong route
   * and hang (the re-establishment test's curl did, 1 run in 2-4).
   */
  isReady(): boolean {
    return this.started && !this.rehelloing && !!this.session && this.session.status().some((p) => p.state === 'up');
  }

  status(): EdgeStatus {
    return {
      role: 'edge',
      id: this.cfg.id,
      ready: this.isReady(),
      sessionId: this.session?.id ?? null,
      tunnelAddress: this.reply?.tunnelAddress ?? null,
      paths: this.session?.status().map((p, i) => ({ ...p, kind: this.racers[i]?.kind ?? null })) ?? this.cfg.carriers.map((c, id) => ({
        id, name: c.name, state: 'probing' as const, transport: null, txBytes: 0, rxBytes: 0, txPackets: 0, rxPackets: 0,
        txDataBytes: 0, rxDataBytes: 0, rttMs: null, minRttMs: null, rateMbps: 0, inflightBytes: 0, sendErrors: 0,
      })),
      racing: this.racers.filter((x): x is TransportRacer => x !== undefined).map((x) => x.status()),
      tunnel: tunStatsOf(this.tun),
      reorder: this.session?.reorderStats() ?? null,
      drops: this.drops.toJSON(),
      uplink: this.uplink?.reporter.stats() ?? null,
      context: { ...this.context(), highSpeed: this.highSpeed?.on ?? false },
      sharing: this.sharing?.status() ?? null,
      pathMtu: this.pmtu ? { tunnelMtu: this.pmtu.discovery.tunnelMtu, paths: this.pmtu.discovery.status() } : null,
      tcpRelay: this.relay && this.relayListener ? { ...this.relay.stats(), accepted: this.relayListener.counts.relayed, refused: this.relayListener.counts.refused } : null,
    };
  }

  private telemetryView(): TelemetryView {
    const carriers = this.cfg.carriers.map((c) => ({
      name: c.name, interface: c.interface, operator: c.metadata?.operator, mcc: c.metadata?.mcc, mnc: c.metadata?.mnc, technology: c.metadata?.technology,
    }));
    return {
      sessions: () => (this.session ? [{
        id: this.session.id, peer: this.cfg.control.cloud, paths: this.session.status(), carriers, reorder: this.session.reorderStats(),
        retransmitted: this.session.retransmitted, redundantCopies: this.session.redundantCopyCounts(),
        ...(this.relay ? { relay: this.relay.stats() } : {}),
      }] : []),
      drops: () => ({ ...this.drops.toJSON(), ...this.uplink?.drops() }),
      tunnel: () => tunStatsOf(this.tun),
      races: () => this.racers.flatMap((r) => (r ? [{ ...r.status(), sessionId: this.session?.id }] : [])),
    };
  }

  /** Where control-plane calls go: the carrier relay (TLS still verified against the cloud's name) or the cloud itself. */
  private controlTarget(): { target: string; serverName: string | undefined } {
    const r = this.controlRelay;
    return r ? { target: r.target, serverName: this.cfg.control.serverName ?? r.serverName } : { target: this.cfg.control.cloud, serverName: this.cfg.control.serverName };
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.policy?.stop();
    this.controlRelay?.close();
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.contextTimer) clearInterval(this.contextTimer);
    await this.contextSource?.stop();
    if (this.session) this.telemetry?.event({ kind: 'session.ended', sessionId: this.session.id, message: `session ${this.session.id} ended: edge stopping` });
    if (this.plan) await removeInterception(this.plan).catch((e: Error) => this.log.error({ err: e.message }, 'removing interception failed'));
    this.relay?.close();
    await this.relayListener?.close();
    this.session?.close();
    this.sharing?.stop();
    await this.pmtu?.stop();
    for (const p of this.paths) p?.close();
    this.tun?.close();
    await this.admin?.close();
    await this.adminApi?.close();
    this.uplink?.stop();
    await this.telemetry?.shutdown();
    this.log.info('edge stopped');
  }
}
