// The edge and cloud configuration schemas. Parts both gateways have (TLS files, data-plane
// tuning, tunnel device, admin endpoint, logging) are defined once here and composed.
// docs/configuration.md documents every key; test/config.test.ts fails when the two drift.
import { hostname } from 'node:os';
import { z } from 'zod';
import {
  bool, expecting, filePath, host, hostPort, ifname, intIn, ipv4Cidr, listOf, numIn, oneOf, section, stringParsedBy, stringWhere,
} from './fields.js';
import { parseHostPort } from './net.js';
import { popSelectionSchema, popsSchema } from '../pop/config.js';
import { checkAnomalyAfterKeepalive, racingSchema, streamListen } from '../racing/config.js';
import { contextSchema } from '../context/config.js';
import { pathPolicySchema } from '../session/path-policy.js';
import { pmtuSchema } from '../path/pmtu-config.js';
import { lentBySchema, sharingSchema } from '../sharing/config.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const CARRIER_TECHNOLOGIES = ['lte', 'nr', 'umts', 'wifi', 'ethernet', 'satellite', 'other'] as const;
export const MAX_CARRIERS = 16;

// ---- shared parts ---------------------------------------------------------------------------

/**
 * A block with required keys that is itself missing is parsed as {}, so the error lists each
 * missing key ("control.tls.ca: required: ...") instead of one vague "control: required".
 * The cast is needed because {} is not a valid input for the block; parsing it is the point.
 */
function missingAsEmpty<T extends z.ZodObject>(block: T) {
  return block.prefault({} as z.input<T>);
}

const gatewayId = () =>
  stringWhere('an identifier of 1-253 characters without spaces', (s) => /^\S{1,253}$/.test(s)).default(() => hostname());

/** PEM files of the mutual-TLS control plane. Relative paths are resolved by the loader. */
const tlsSchema = missingAsEmpty(section({
  ca: filePath('a path to the PEM file of the CA that signs the peer certificates'),
  cert: filePath('a path to this gateway\'s PEM certificate'),
  key: filePath('a path to this gateway\'s PEM private key'),
}));

const reorderSchema = section({
  holdMs: intIn(1, 5000).default(100),
  // At most 65536: a packet names its flow's previous one by a 16-bit gap (wire/header), so a
  // predecessor more than 65535 sequences back must already be out of the window.
  maxPackets: intIn(16, 65536).default(8192),
  maxBytes: intIn(65536, 1073741824).default(16777216),
}).prefault({});

/** The scheduling engine (S2): first-bytes pinning, utility weights, privileged users. */
const scheduleSchema = section({
  pinBytes: intIn(0, 1 << 30).default(330 * 1024),
  alpha: numIn(0, 100).default(0.02),
  beta: numIn(0, 100).default(0.1),
  privilegedUsers: listOf(stringWhere('an IPv4 address', (s) => /^\d{1,3}(\.\d{1,3}){3}$/.test(s)), 'a list of client IPv4 addresses').default([]),
}).prefault({});

const cidrList = (what: string) => listOf(ipv4Cidr(), what);

/**
 * Split TCP (relay/, docs/tcp-relay.md): the edge terminates client TCP connections to
 * multipath destinations and the cloud opens them to the servers; both ends read this section.
 */
const tcpRelaySchema = section({
  enabled: bool().default(true),
  /** Edge: the local port nftables redirects intercepted client connections to. */
  port: intIn(1, 65535).default(7405),
  /** Edge: TCP destination ports that stay end-to-end (carried as IP packets, never relayed). */
  excludePorts: listOf(intIn(1, 65535), 'a list of TCP port numbers').default([]),
  windowBytes: intIn(65536, 1 << 30).default(4 << 20),
  maxStreams: intIn(1, 1 << 20).default(4096),
  deadPeerMs: intIn(1000, 3_600_000).default(60_000),
  /** Cloud: how long a connection to a destination may take before the client's is reset. */
  connectTimeoutMs: intIn(100, 120_000).default(10_000),
  /** Cloud: destinations it never dials for an edge (besides its own addresses). */
  refuseDestinations: cidrList('a list of IPv4 CIDRs').default(['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/3']),
}).prefault({});

const sendQueueSchema = section({
  maxPackets: intIn(16, 1 << 20).default(4096),
  maxBytes: intIn(65536, 1 << 30).default(8 << 20),
  maxDelayMs: intIn(1, 10000).default(100),
}).prefault({});

/** Data-plane timing and buffer sizes: both ends run the same code, so they share the knobs. */
const dataPlaneTuningShape = {
  congestion: oneOf(['inflight-cap', 's3'] as const).default('inflight-cap'),
  lowLatency: bool().default(true),
  compressHeaders: bool().default(true),
  schedule: scheduleSchema,
  sendQueue: sendQueueSchema,
  keepaliveMs: intIn(50, 60000).default(1000),
  ackIntervalMs: intIn(1, 1000).default(10),
  ackEveryPackets: intIn(1, 1024).default(8),
  pathDeadMs: intIn(50, 60000).default(300),
  reorder: reorderSchema,
  replayWindow: intIn(64, 65536).default(8192),
  pmtu: pmtuSchema,
  tcpRelay: tcpRelaySchema,
};

const tunnelShape = {
  device: ifname().default('braid0'),
  mtu: intIn(576, 9000).default(1400),
};

const adminSchema = (defaultListen: string) =>
  section({
    listen: stringParsedBy('host:port for the status HTTP endpoint, or "" to disable it', (s) => {
      if (s !== '') parseHostPort(s);
    }).default(defaultListen),
    grpcListen: stringParsedBy('host:port for the admin gRPC API (mTLS), or "" to disable it', (s) => {
      if (s !== '') parseHostPort(s);
    }).default(''),
    /** Server certificate of the admin gRPC API and the CA its operators' certificates chain to. */
    tls: section({
      ca: filePath('a path to the PEM file of the CA that signs operator certificates'),
      cert: filePath('a path to the PEM certificate the admin API presents'),
      key: filePath('a path to the PEM private key of admin.tls.cert'),
    }).optional(),
    operatorOu: stringWhere('an organizational unit name (1-64 characters)', (s) => /^[^\s,=+]{1,64}$/.test(s)).default('operator'),
  }).prefault({});

/** OpenTelemetry and the operator's views; exporters are configured by the standard OTEL_* variables. */
const telemetrySchema = section({
  serviceName: stringWhere('a service name of 1-128 characters', (s) => /^\S{1,128}$/.test(s)).optional(),
  prometheus: bool().default(true),
  dashboard: bool().default(true),
  eventCapacity: intIn(10, 100000).default(1000),
}).prefault({});

const logSchema = section({
  level: oneOf(LOG_LEVELS).default('info'),
  pretty: bool().default(false),
}).prefault({});

/** Edge -> cloud telemetry reports (gateway-core/src/uplink, docs/telemetry.md). */
const uplinkSchema = section({
  enabled: bool().default(true),
  maxReportsPerSecond: intIn(1, 10).default(10),
  stableIntervalMs: intIn(500, 600000).default(5000),
  queueReports: intIn(10, 100000).default(600),
}).prefault({});

/** The cloud's fleet history and derived overlays (gateway-core/src/fleet, docs/telemetry.md). */
const fleetSchema = section({
  stateFile: filePath('a path to the JSON file where the cloud keeps its fleet state').optional(),
  historySamples: intIn(10, 10000).default(120),
  maxReportingEdges: intIn(1, 100000).default(4096),
}).prefault({});

// ---- edge -----------------------------------------------------------------------------------

const carrierSchema = section({
  name: stringWhere('a carrier name matching [a-z0-9][a-z0-9-_.]{0,31}', (s) => /^[a-z0-9][a-z0-9\-_.]{0,31}$/.test(s)),
  interface: ifname(),
  metadata: section({
    operator: z.string({ error: expecting('the operator name as a string') }).optional(),
    mcc: stringWhere('a quoted string of 3 digits (mobile country code, e.g. "262")', (s) => /^[0-9]{3}$/.test(s)).optional(),
    mnc: stringWhere('a quoted string of 2-3 digits (mobile network code, e.g. "01")', (s) => /^[0-9]{2,3}$/.test(s)).optional(),
    technology: oneOf(CARRIER_TECHNOLOGIES).optional(),
  }).optional(),
  lentBy: lentBySchema.optional(),
});

function checkCarriersUnique(carriers: { name: string; interface: string; lentBy?: unknown }[], ctx: z.RefinementCtx) {
  for (const field of ['name', 'interface'] as const) {
    const firstAt = new Map<string, number>();
    carriers.forEach((c, i) => {
      // Borrowed carriers (another edge's, sharing) are all reached through the LAN interface.
      if (field === 'interface' && c.lentBy) return;
      const prev = firstAt.get(c[field]);
      if (prev === undefined) firstAt.set(c[field], i);
      else {
        ctx.addIssue({
          code: 'custom',
          path: [i, field],
          input: c[field],
          message: `expected a carrier ${field} no other carrier uses, got ${JSON.stringify(c[field])} (carriers[${prev}].${field} has it too)`,
        });
      }
    });
  }
}


export const edgeConfigSchema = section({
  id: gatewayId(),
  control: missingAsEmpty(section({
    cloud: hostPort('host:port of the cloud control plane', false),
    serverName: host('a TLS server name (host name or IP address)').optional(),
    tls: tlsSchema,
    helloTimeoutMs: intIn(100, 60000).default(5000),
    retryMs: intIn(100, 60000).default(2000),
    /** Follow the cloud's policy stream (braid.v1.PolicyService, docs/policy.md). */
    watchPolicy: bool().default(true),
    /** Control connections through the carrier relay, over whichever carrier reaches the cloud (docs/control-plane.md). */
    viaCarriers: bool().default(true),
  })),
  carriers: listOf(carrierSchema, `a list of 1 to ${MAX_CARRIERS} carriers`)
    .min(1)
    .max(MAX_CARRIERS)
    .superRefine(checkCarriersUnique),
  sharing: sharingSchema,
  tunnel: section(tunnelShape).prefault({}),
  interception: missingAsEmpty(section({
    clientSubnets: cidrList('a list of at least one IPv4 CIDR (the client subnets to intercept)').min(1),
    multipathDestinations: cidrList('a list of IPv4 CIDRs').default(['0.0.0.0/0']),
    bypassDestinations: cidrList('a list of IPv4 CIDRs').default([]),
    routeTable: intIn(1, 4294967294, 'a routing table id between 1 and 4294967294 other than 253, 254, 255 (default, main, local)')
      .refine((n) => n < 253 || n > 255)
      .default(7501),
    rulePriority: intIn(1, 32765).default(7500),
  })),
  dataPlane: section({
    ...dataPlaneTuningShape,
    racing: racingSchema,
    // Per-carrier tiers, data caps and latency cut-offs (session/path-policy); the edge advertises
    // each carrier's tier in-band, so the cloud needs no copy.
    pathPolicy: pathPolicySchema.default({}),
    capStateFile: z.string({ error: expecting('a path to the data-cap state file, or "" to count in memory') }).refine((s) => !s.includes('\0')).default(''),
  }).superRefine(checkAnomalyAfterKeepalive).prefault({}),
  /** S2-5 context sources (radio KPIs, position, speed): gateway-core/src/context/, docs/context.md. */
  context: contextSchema,
  /** S2-13 several PoPs, each destination through the nearest (gateway-core/src/pop/, docs/multi-pop.md). */
  pops: popsSchema,
  popSelection: popSelectionSchema,
  admin: adminSchema('127.0.0.1:9464'),
  telemetry: telemetrySchema,
  uplink: uplinkSchema,
  log: logSchema,
});

// ---- cloud ----------------------------------------------------------------------------------

export const cloudConfigSchema = section({
  id: gatewayId(),
  control: missingAsEmpty(section({
    listen: hostPort('host:port to listen on for the control plane', true).default('0.0.0.0:7443'),
    tls: tlsSchema,
  })),
  dataPlane: section({
    listen: hostPort('host:port to listen on for data-plane UDP', true).default('0.0.0.0:7000'),
    publicHost: host().optional(),
    publicPort: intIn(1, 65535).optional(),
    tcpListen: streamListen('data-plane datagrams over TCP', '0.0.0.0:7000'),
    tlsListen: streamListen('data-plane datagrams over TLS', '0.0.0.0:443'),
    ...dataPlaneTuningShape,
  }).prefault({}),
  tunnel: section({
    ...tunnelShape,
    addressPool: ipv4Cidr(
      (c) => (c.prefix > 30 ? `prefix /${c.prefix} leaves no room for the cloud and an edge (use /30 or shorter)` : undefined),
      'an IPv4 CIDR with prefix length at most 30',
    ).default('100.64.0.0/16'),
  }).prefault({}),
  egress: section({
    nat: bool().default(true),
    interface: ifname().optional(),
  }).prefault({}),
  maxSessions: intIn(1, 65535).default(1024),
  // Several replicas behind one load balancer (docs/kubernetes.md, "Session ownership").
  cluster: section({
    address: stringWhere('an IPv4 address', isIpv4).optional(),
    forwardPort: intIn(1, 65535).default(7002),
    replicas: listOf(stringWhere('an IPv4 address', isIpv4), 'a list of IPv4 addresses').default([]),
    dnsName: host().optional(),
  }).prefault({}),
  admin: adminSchema('127.0.0.1:9465'),
  telemetry: telemetrySchema,
  fleet: fleetSchema,
  /** Policy for the edges (gateway-core/src/policy, docs/policy.md). */
  policy: section({
    file: filePath('a path to the policy document (YAML or JSON, docs/policy.md)').optional(),
    stateFile: filePath('a path to the JSON file where the cloud keeps policies, overrides, overlays and versions').optional(),
    heartbeatMs: intIn(100, 60000).default(5000),
  }).prefault({}),
  log: logSchema,
});

function isIpv4(s: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) && s.split('.').every((n) => Number(n) <= 255);
}

export type EdgeConfig = z.output<typeof edgeConfigSchema>;
export type CloudConfig = z.output<typeof cloudConfigSchema>;
export type TlsConfig = EdgeConfig['control']['tls'];
export type DataPlaneConfig = EdgeConfig['dataPlane'];
export type CarrierConfig = EdgeConfig['carriers'][number];
export type LogConfig = EdgeConfig['log'];
export type TelemetryConfig = EdgeConfig['telemetry'];
export type AdminConfig = EdgeConfig['admin'];
