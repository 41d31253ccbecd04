// Config schemas: defaults, one worded message per kind of mistake, YAML and file errors, and the
// shipped example files.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

/** The data-plane tuning defaults both gateways share (one schema part, one expectation). */
const DATA_PLANE_DEFAULTS = {
  keepaliveMs: 1000,
  ackIntervalMs: 10,
  ackEveryPackets: 8,
  pathDeadMs: 300,
  congestion: 'inflight-cap',
  lowLatency: true,
  compressHeaders: true,
  schedule: { pinBytes: 337920, alpha: 0.02, beta: 0.1, privilegedUsers: [] },
  sendQueue: { maxPackets: 4096, maxBytes: 8388608, maxDelayMs: 100 },
  reorder: { holdMs: 100, maxPackets: 8192, maxBytes: 16777216 },
  replayWindow: 8192,
  pmtu: { enabled: true, floor: 1252, probeTimeoutMs: 500, researchIntervalS: 600 },
  tcpRelay: {
    enabled: true, port: 7405, excludePorts: [], windowBytes: 4 << 20, maxStreams: 4096, deadPeerMs: 60_000, connectTimeoutMs: 10_000,
    refuseDestinations: ['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/3'],
  },
};
import {
  ConfigError, loadCloudConfig, loadEdgeConfig, parseCloudConfig, parseEdgeConfig,
} from '../src/config/index.js';

const repo = new URL('../../', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'braid-config-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function minimalEdge(): Record<string, unknown> {
  return {
    control: { cloud: 'cloud.example.net:7443', tls: { ca: '/tls/ca.pem', cert: '/tls/edge.pem', key: '/tls/edge-key.pem' } },
    carriers: [{ name: 'lte-a', interface: 'wwan0' }],
    interception: { clientSubnets: ['192.168.8.0/24'] },
  };
}

function minimalCloud(): Record<string, unknown> {
  return { control: { tls: { ca: '/tls/ca.pem', cert: '/tls/cloud.pem', key: '/tls/cloud-key.pem' } } };
}

/** Runs `f`, expects a ConfigError, returns it. */
function configError(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a ConfigError, parsing succeeded');
}

/** Parses an edge config with `patch` applied at `path` and returns the one message for `field`. */
function edgeMessage(patch: (c: Record<string, unknown>) => void, field: string): string {
  const c = minimalEdge();
  patch(c);
  const err = configError(() => parseEdgeConfig(c, 'edge.yaml'));
  const hits = err.issues.filter((i) => i.path === field);
  assert.equal(hits.length, 1, `one issue at ${field}; got:\n${err.message}`);
  return `edge.yaml: ${field}: ${hits[0]!.message}`;
}

function set(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let o: Record<string, unknown> = obj;
  for (const k of keys.slice(0, -1)) {
    o[k] ??= {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys.at(-1)!] = value;
}

describe('edge config', () => {
  test('a minimal config gets every default', () => {
    const cfg = parseEdgeConfig(minimalEdge());
    assert.deepEqual(cfg, {
      id: hostname(),
      control: {
        cloud: 'cloud.example.net:7443',
        tls: { ca: '/tls/ca.pem', cert: '/tls/edge.pem', key: '/tls/edge-key.pem' },
        helloTimeoutMs: 5000,
        retryMs: 2000,
        watchPolicy: true,
        viaCarriers: true,
      },
      carriers: [{ name: 'lte-a', interface: 'wwan0' }],
      tunnel: { device: 'braid0', mtu: 1400 },
      interception: {
        clientSubnets: ['192.168.8.0/24'],
        multipathDestinations: ['0.0.0.0/0'],
        bypassDestinations: [],
        routeTable: 7501,
        rulePriority: 7500,
      },
      sharing: { listen: '', allow: [], lendCarriers: [], reverseAfterMs: 1000, retryMs: 2000 },
      dataPlane: {
        ...DATA_PLANE_DEFAULTS,
        pathPolicy: {},
        capStateFile: '',
        racing: {
          cascade: ['udp', 'tcp', 'tls'],
          switchThresholdMs: 10000,
          anomalyThresholdMs: 5000,
          weights: { p1: 2, p2: 1, p3: 3 },
          keepSeveralStreams: false,
          tlsPort: 443,
          typeBindings: {},
        },
      },
      context: {
        sources: [], staleMs: 15000, highSpeedKmh: 160, gpsd: '127.0.0.1:2947',
        modemManager: { pollMs: 5000, command: 'mmcli' }, emulator: { pollMs: 1000 },
      },
      pops: [],
      popSelection: { intervalMs: 1000, hysteresisPct: 10, hysteresisMs: 2, destinations: [] },
      admin: { listen: '127.0.0.1:9464', grpcListen: '', operatorOu: 'operator' },
      telemetry: { prometheus: true, dashboard: true, eventCapacity: 1000 },
      uplink: { enabled: true, maxReportsPerSecond: 10, stableIntervalMs: 5000, queueReports: 600 },
      log: { level: 'info', pretty: false },
    });
  });

  test('an empty config lists every required key, one per line', () => {
    const err = configError(() => parseEdgeConfig({}, 'edge.yaml'));
    assert.deepEqual(err.issues.map((i) => i.path), [
      'control.cloud', 'control.tls.ca', 'control.tls.cert', 'control.tls.key', 'carriers', 'interception.clientSubnets',
    ]);
    assert.ok(err.issues.every((i) => i.message.startsWith('required: expected ')), err.message);
    const lines = err.message.split('\n');
    assert.equal(lines.length, 6);
    assert.equal(lines[0], 'edge.yaml: control.cloud: required: expected host:port of the cloud control plane');
  });

  test('interface of the wrong type names the field and the rule', () => {
    const msg = edgeMessage((c) => {
      c.carriers = [{ name: 'a', interface: 'wwan0' }, { name: 'b', interface: 42 }];
    }, 'carriers[1].interface');
    assert.equal(msg, "edge.yaml: carriers[1].interface: expected a network interface name (1-15 chars, no '/', ':' or spaces), got 42");
  });

  test('interface names follow Linux rules', () => {
    for (const bad of ['', 'a-name-that-is-16', 'eth/0', 'eth0:1', 'wan 0', '..']) {
      const msg = edgeMessage((c) => { c.carriers = [{ name: 'a', interface: bad }]; }, 'carriers[0].interface');
      assert.match(msg, /expected a network interface name/);
      assert.ok(msg.endsWith(`got ${JSON.stringify(bad)}`), msg);
    }
    assert.doesNotThrow(() => parseEdgeConfig({ ...minimalEdge(), carriers: [{ name: 'a', interface: 'a-name-that-is1' }] }));
  });

  test('a string where a number belongs', () => {
    const msg = edgeMessage((c) => set(c, 'dataPlane.reorder.holdMs', 'fast'), 'dataPlane.reorder.holdMs');
    assert.equal(msg, 'edge.yaml: dataPlane.reorder.holdMs: expected a number between 1 and 5000, got "fast"');
  });

  test('numbers out of range, and fractions', () => {
    const cases: [string, unknown, RegExp][] = [
      ['control.helloTimeoutMs', 99, /expected a number between 100 and 60000, got 99$/],
      ['control.retryMs', 60001, /expected a number between 100 and 60000, got 60001$/],
      ['tunnel.mtu', 575, /expected a number between 576 and 9000, got 575$/],
      ['interception.rulePriority', 32766, /expected a number between 1 and 32765, got 32766$/],
      ['interception.routeTable', 254, /expected a routing table id between 1 and 4294967294 other than 253, 254, 255 .*got 254$/],
      ['interception.routeTable', 0, /routing table id .*got 0$/],
      ['dataPlane.keepaliveMs', 2.5, /expected a whole number \(a number between 50 and 60000\), got 2\.5$/],
      ['dataPlane.ackIntervalMs', 0, /between 1 and 1000, got 0$/],
      ['dataPlane.ackEveryPackets', 1025, /between 1 and 1024, got 1025$/],
      ['dataPlane.reorder.maxPackets', 15, /between 16 and 65536, got 15$/],
      ['dataPlane.reorder.maxBytes', 65535, /between 65536 and 1073741824, got 65535$/],
      ['dataPlane.replayWindow', 65537, /between 64 and 65536, got 65537$/],
    ];
    for (const [field, value, re] of cases) {
      assert.match(edgeMessage((c) => set(c, field, value), field), re, field);
    }
  });

  test('enums, booleans, strings, lists and mappings', () => {
    assert.match(edgeMessage((c) => set(c, 'log.level', 'verbose'), 'log.level'),
      /expected one of fatal\|error\|warn\|info\|debug\|trace\|silent, got "verbose"$/);
    assert.match(edgeMessage((c) => set(c, 'log.pretty', 'yes'), 'log.pretty'), /expected true or false, got "yes"$/);
    assert.match(edgeMessage((c) => { c.carriers = [{ name: 'a', interface: 'w0', metadata: { technology: '5g' } }]; },
      'carriers[0].metadata.technology'), /expected one of lte\|nr\|umts\|wifi\|ethernet\|satellite\|other, got "5g"$/);
    assert.match(edgeMessage((c) => { c.carriers = [{ name: 'a', interface: 'w0', metadata: { mcc: 262 } }]; },
      'carriers[0].metadata.mcc'), /expected a quoted string of 3 digits .*got 262$/);
    assert.match(edgeMessage((c) => { c.carriers = [{ name: 'a', interface: 'w0', metadata: { mnc: '1' } }]; },
      'carriers[0].metadata.mnc'), /expected a quoted string of 2-3 digits .*got "1"$/);
    assert.match(edgeMessage((c) => { c.carriers = [{ name: 'LTE', interface: 'w0' }]; }, 'carriers[0].name'),
      /expected a carrier name matching .*got "LTE"$/);
    assert.match(edgeMessage((c) => { c.carriers = []; }, 'carriers'), /expected a list of 1 to 16 carriers, got an empty list$/);
    const seventeen = Array.from({ length: 17 }, (_, i) => ({ name: `c${i}`, interface: `w${i}` }));
    assert.match(edgeMessage((c) => { c.carriers = seventeen; }, 'carriers'), /got a list of 17 items$/);
    assert.match(edgeMessage((c) => { c.dataPlane = 'fast'; }, 'dataPlane'), /expected a mapping of keys to values, got "fast"$/);
    assert.match(edgeMessage((c) => { c.tunnel = null; }, 'tunnel'), /expected a mapping of keys to values, got an empty value$/);
    assert.match(edgeMessage((c) => set(c, 'interception.clientSubnets', []), 'interception.clientSubnets'),
      /expected a list of at least one IPv4 CIDR .*got an empty list$/);
  });

  test('host:port values', () => {
    const f = 'control.cloud';
    assert.match(edgeMessage((c) => set(c, f, 'cloud.example.net'), f), /expected host:port of the cloud control plane, got "cloud.example.net": no port$/);
    assert.match(edgeMessage((c) => set(c, f, 'cloud:70000'), f), /port "70000" is not a number 0-65535$/);
    assert.match(edgeMessage((c) => set(c, f, 'cloud:0'), f), /port 0 is not a port one can connect to$/);
    assert.match(edgeMessage((c) => set(c, f, '::1:7443'), f), /write IPv6 addresses in brackets/);
    assert.match(edgeMessage((c) => set(c, f, 'bad_host:7443'), f), /"bad_host" is not a valid host name or IP address$/);
    assert.match(edgeMessage((c) => set(c, 'admin.listen', 'localhost'), 'admin.listen'), /or "" to disable it, got "localhost": no port$/);
    for (const ok of ['10.0.0.1:7443', '[::1]:7443', 'cloud-1.example.net:1']) {
      const c = minimalEdge();
      set(c, f, ok);
      assert.equal(parseEdgeConfig(c).control.cloud, ok);
    }
    const c = minimalEdge();
    set(c, 'admin.listen', '');
    assert.equal(parseEdgeConfig(c).admin.listen, '', '"" disables the admin endpoint');
  });

  test('CIDR with host bits set suggests the network', () => {
    const msg = edgeMessage((c) => set(c, 'interception.clientSubnets', ['10.0.0.1/24']), 'interception.clientSubnets[0]');
    assert.equal(msg, 'edge.yaml: interception.clientSubnets[0]: expected an IPv4 CIDR such as 10.0.0.0/24, got "10.0.0.1/24": host bits set, did you mean 10.0.0.0/24?');
  });

  test('other malformed CIDRs', () => {
    const cases: [string, RegExp][] = [
      ['10.0.0.0', /no prefix length \(write 10\.0\.0\.0\/32 for a single host\)$/],
      ['256.0.0.0/8', /octet 256 is greater than 255$/],
      ['10.0.0/8', /not an IPv4 address/],
      ['10.0.0.0/33', /prefix length "33" is not 0-32$/],
      ['10.00.0.0/16', /octet "00" is not a number 0-255$/],
    ];
    for (const [cidr, re] of cases) {
      const msg = edgeMessage((c) => set(c, 'interception.bypassDestinations', ['192.168.0.0/16', cidr]), 'interception.bypassDestinations[1]');
      assert.match(msg, re, cidr);
    }
  });

  test('unknown keys are errors, with a suggestion when one is close', () => {
    const c = minimalEdge();
    set(c, 'dataPlane.reorder.holdMS', 50);
    set(c, 'interception.bypasDestinations', []);
    c.tunel = {};
    set(c, 'log.colour', true);
    const err = configError(() => parseEdgeConfig(c, 'edge.yaml'));
    const byPath = new Map(err.issues.map((i) => [i.path, i.message]));
    assert.equal(byPath.get('dataPlane.reorder.holdMS'), 'unknown key, did you mean "holdMs"?');
    assert.equal(byPath.get('interception.bypasDestinations'), 'unknown key, did you mean "bypassDestinations"?');
    assert.equal(byPath.get('tunel'), 'unknown key, did you mean "tunnel"?');
    assert.equal(byPath.get('log.colour'), 'unknown key (allowed here: level, pretty)');
    assert.equal(err.issues.length, 4, err.message);
  });

  test('unknown key inside a carrier', () => {
    const c = minimalEdge();
    c.carriers = [{ name: 'a', interface: 'w0' }, { name: 'b', interface: 'w1', metdata: {} }];
    const err = configError(() => parseEdgeConfig(c, 'edge.yaml'));
    assert.equal(err.message, 'edge.yaml: carriers[1].metdata: unknown key, did you mean "metadata"?');
  });

  test('duplicate carrier names and interfaces are rejected', () => {
    const c = minimalEdge();
    c.carriers = [
      { name: 'a', interface: 'wwan0' },
      { name: 'b', interface: 'wwan0' },
      { name: 'a', interface: 'wwan1' },
    ];
    const err = configError(() => parseEdgeConfig(c, 'edge.yaml'));
    assert.deepEqual(err.message.split('\n').sort(), [
      'edge.yaml: carriers[1].interface: expected a carrier interface no other carrier uses, got "wwan0" (carriers[0].interface has it too)',
      'edge.yaml: carriers[2].name: expected a carrier name no other carrier uses, got "a" (carriers[0].name has it too)',
    ]);
  });

  test('several problems are all listed, one per line', () => {
    const c = minimalEdge();
    set(c, 'tunnel.mtu', 100);
    set(c, 'log.level', 'loud');
    c.carriers = [{ name: 'a', interface: 42 }];
    const err = configError(() => parseEdgeConfig(c, 'edge.yaml'));
    const lines = err.message.split('\n');
    assert.equal(lines.length, 3, err.message);
    assert.ok(lines.every((l) => l.startsWith('edge.yaml: ')));
    assert.deepEqual(err.issues.map((i) => i.path).sort(), ['carriers[0].interface', 'log.level', 'tunnel.mtu']);
  });

  test('without a source the message says which config it is', () => {
    const err = configError(() => parseEdgeConfig(42));
    assert.equal(err.message, 'edge config: expected a mapping of keys to values, got 42');
    assert.equal(err.issues[0]!.path, '');
  });
});

describe('cloud config', () => {
  test('a minimal config gets every default', () => {
    assert.deepEqual(parseCloudConfig(minimalCloud()), {
      id: hostname(),
      control: { listen: '0.0.0.0:7443', tls: { ca: '/tls/ca.pem', cert: '/tls/cloud.pem', key: '/tls/cloud-key.pem' } },
      dataPlane: {
        listen: '0.0.0.0:7000',
        tcpListen: '0.0.0.0:7000',
        tlsListen: '0.0.0.0:443',
        ...DATA_PLANE_DEFAULTS,
      },
      tunnel: { device: 'braid0', mtu: 1400, addressPool: '100.64.0.0/16' },
      egress: { nat: true },
      maxSessions: 1024,
      cluster: { forwardPort: 7002, replicas: [] },
      admin: { listen: '127.0.0.1:9465', grpcListen: '', operatorOu: 'operator' },
      telemetry: { prometheus: true, dashboard: true, eventCapacity: 1000 },
      fleet: { historySamples: 120, maxReportingEdges: 4096 },
      policy: { heartbeatMs: 5000 },
      log: { level: 'info', pretty: false },
    });
  });

  test('TLS files are required', () => {
    const err = configError(() => parseCloudConfig({}, 'cloud.yaml'));
    assert.deepEqual(err.issues.map((i) => i.path), ['control.tls.ca', 'control.tls.cert', 'control.tls.key']);
  });

  test('wrong fields name the field and the expected value', () => {
    const c = minimalCloud();
    set(c, 'tunnel.addressPool', '100.64.0.0/31');
    set(c, 'dataPlane.publicPort', 0);
    set(c, 'dataPlane.publicHost', 'not a host');
    set(c, 'dataPlane.listen', '0.0.0.0');
    set(c, 'egress.interface', 'eth/0');
    set(c, 'egress.nat', 'no');
    c.maxSessions = 65536;
    const err = configError(() => parseCloudConfig(c, 'cloud.yaml'));
    const byPath = new Map(err.issues.map((i) => [i.path, i.message]));
    assert.match(byPath.get('tunnel.addressPool') ?? '', /expected an IPv4 CIDR with prefix length at most 30, got "100.64.0.0\/31"/);
    assert.equal(byPath.get('dataPlane.publicPort'), 'expected a number between 1 and 65535, got 0');
    assert.equal(byPath.get('dataPlane.publicHost'), 'expected a host name or IP address, got "not a host"');
    assert.match(byPath.get('dataPlane.listen') ?? '', /expected host:port to listen on for data-plane UDP, got "0.0.0.0": no port/);
    assert.match(byPath.get('egress.interface') ?? '', /expected a network interface name/);
    assert.equal(byPath.get('egress.nat'), 'expected true or false, got "no"');
    assert.equal(byPath.get('maxSessions'), 'expected a number between 1 and 65535, got 65536');
    assert.equal(err.issues.length, 7, err.message);
  });

  test('listen addresses may use port 0 (any free port)', () => {
    const c = minimalCloud();
    set(c, 'control.listen', '127.0.0.1:0');
    set(c, 'dataPlane.listen', '127.0.0.1:0');
    assert.equal(parseCloudConfig(c).dataPlane.listen, '127.0.0.1:0');
  });

  test('edge-only keys are unknown on the cloud', () => {
    const c = minimalCloud();
    c.carriers = [];
    const err = configError(() => parseCloudConfig(c, 'cloud.yaml'));
    assert.match(err.message, /^cloud.yaml: carriers: unknown key \(allowed here: /);
  });
});

describe('loading YAML files', () => {
  test('the example files in deploy/examples parse', () => {
    const edge = loadEdgeConfig(join(repo, 'deploy/examples/edge.yaml'));
    assert.equal(edge.carriers.length, 3);
    assert.equal(edge.carriers[0]!.metadata?.mnc, '01');
    assert.equal(edge.control.tls.ca, '/etc/braid/tls/ca.pem');
    const cloud = loadCloudConfig(join(repo, 'deploy/examples/cloud.yaml'));
    assert.equal(cloud.dataPlane.publicHost, 'braid-data.example.net');
    assert.equal(cloud.egress.interface, 'eth0');
  });

  test('relative TLS paths resolve against the config file', () => {
    const file = join(tmp, 'cloud.yaml');
    writeFileSync(file, 'control:\n  tls: { ca: tls/ca.pem, cert: /abs/cert.pem, key: ./key.pem }\n');
    const cfg = loadCloudConfig(file);
    assert.deepEqual(cfg.control.tls, { ca: join(tmp, 'tls/ca.pem'), cert: '/abs/cert.pem', key: join(tmp, 'key.pem') });
  });

  test('validation errors carry the file name', () => {
    const file = join(tmp, 'bad.yaml');
    writeFileSync(file, 'control:\n  tls: { ca: a, cert: b, key: c }\nmaxSessions: lots\n');
    const err = configError(() => loadCloudConfig(file));
    assert.equal(err.message, `${file}: maxSessions: expected a number between 1 and 65535, got "lots"`);
  });

  test('a YAML syntax error names the line', () => {
    const file = join(tmp, 'syntax.yaml');
    writeFileSync(file, 'control:\n  cloud: a:1\n  tls: [unclosed\nlog:\n  level: info\n');
    const err = configError(() => loadEdgeConfig(file));
    assert.equal(err.issues[0]!.path, '');
    assert.match(err.message, new RegExp(`^${file}: YAML syntax error at line \\d+, column \\d+: `));
    const line = Number(/line (\d+)/.exec(err.message)![1]);
    assert.ok(line >= 3 && line <= 5, err.message);
  });

  test('a duplicated key is a YAML error with its line', () => {
    const file = join(tmp, 'dup.yaml');
    writeFileSync(file, 'log:\n  level: info\nlog:\n  level: debug\n');
    const err = configError(() => loadEdgeConfig(file));
    assert.match(err.message, /YAML syntax error at line 3, column 1: .*unique/i);
  });

  test('a missing file is a clear ConfigError', () => {
    const file = join(tmp, 'nope.yaml');
    const err = configError(() => loadEdgeConfig(file));
    assert.equal(err.message, `${file}: cannot read config file: no such file`);
  });

  test('a directory or an empty file is a clear ConfigError', () => {
    assert.match(configError(() => loadEdgeConfig(tmp)).message, /cannot read config file: is a directory/);
    const file = join(tmp, 'empty.yaml');
    writeFileSync(file, '# nothing here\n');
    assert.match(configError(() => loadEdgeConfig(file)).message, /the file is empty/);
  });
});
