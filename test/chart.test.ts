// charts/braid: lint, renders of every supported shape, the Kubernetes schema for every object,
// the gateways' own config schema for every ConfigMap, and values.schema.json refusing bad
// values by name. Uses the real helm (scripts/helm.sh); needs neither root nor a cluster.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { parseCloudConfig, parseEdgeConfig } from '@braid/gateway-core';
import { CHART, find, helm, render, schemaProblems, type K8sObject } from './chart-harness.js';

const HA = ['-f', join(CHART, 'values-ha.yaml')];
const EDGE_ONLY = ['--set', 'cloud.enabled=false', '--set', 'edge.cloudAddress=braid.example.net:7443',
  '--set', 'tls.mode=existingSecret', '--set', 'tls.existingSecret.edge=braid-edge-tls'];
const CLOUD_ONLY = ['--set', 'edge.enabled=false'];
/** Everything optional switched on, so every template is rendered and checked at least once. */
const EVERYTHING = [
  '--set', 'tls.mode=certManager', '--set', 'observability.serviceMonitor.enabled=true',
  '--set', 'observability.podMonitor.enabled=true', '--set', 'observability.otlp.endpoint=http://otel-collector:4318',
  '--set', 'edge.readNodeAnnotations=true', '--set', 'edge.network.mode=multus',
  '--set-json', 'edge.network.multus=[{"name":"lte-a-net","interface":"wwan0"},{"name":"lte-b-net","interface":"wwan1"}]',
  '--set-json', 'networkPolicy.metricsFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]',
  '--set', 'cloud.hpa.enabled=true', '--set', 'priorityClass.create=true',
  '--set', 'cloud.publicHost=data.example.net', '--set', 'cloud.publicPort=7000', '--set', 'cloud.egress.interface=eth0',
  '--set-json', 'edge.carriers=[{"name":"lte-a","interface":"wwan0","metadata":{"operator":"Telekom","mcc":"262","mnc":"01","technology":"lte"}},{"name":"nr-b","interface":"wwan1","metadata":{"operator":"Vodafone","mcc":"262","mnc":"02","technology":"nr"}}]',
];

const RENDERS: Record<string, string[]> = {
  default: [], ha: HA, 'edge-only': EDGE_ONLY, 'cloud-only': CLOUD_ONLY, everything: EVERYTHING,
};

function kinds(objs: K8sObject[]): string[] {
  return objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
}

type Json = Record<string, unknown>;
const at = (o: unknown, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>((v, k) => (v === null || v === undefined ? undefined : (v as Record<string | number, unknown>)[k]), o);
const podSpec = (w: K8sObject): Json => at(w, 'spec', 'template', 'spec') as Json;
const container = (w: K8sObject): Json => (podSpec(w).containers as Json[])[0] as Json;

describe('helm lint --strict', () => {
  for (const [name, args] of Object.entries({ default: [], ha: HA, 'edge-only': EDGE_ONLY, 'cloud-only': CLOUD_ONLY })) {
    test(name, () => {
      const r = helm(['lint', '--strict', CHART, ...args]);
      assert.equal(r.status, 0, `helm lint --strict ${name} failed:\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      assert.doesNotMatch(r.stdout, /\[(WARNING|ERROR)\]/);
    });
  }
});

describe('every rendered object validates against the Kubernetes schema', () => {
  test('the validator itself catches a wrong type and an unknown field', () => {
    const bad: K8sObject = {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'bad' },
      spec: {
        replicas: '3', selector: { matchLabels: { a: 'b' } },
        template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i', imagePolicy: 'Never' }] } },
      },
    };
    const problems = schemaProblems(bad).join('\n');
    assert.match(problems, /replicas must be integer/);
    assert.match(problems, /unknown field spec\.template\.spec\.containers\[0\]\.imagePolicy/);
    assert.match(schemaProblems({ apiVersion: 'v1', kind: 'Nonsense', metadata: { name: 'x' } }).join(), /not a known Kubernetes/);
  });
  for (const [name, args] of Object.entries(RENDERS)) {
    test(name, () => {
      const objs = render(args);
      assert.ok(objs.length >= 3, `${name}: only ${objs.length} objects`);
      assert.deepEqual(objs.flatMap(schemaProblems), []);
    });
  }
});

describe('ConfigMaps hold configs the gateways accept', () => {
  for (const [name, args] of Object.entries(RENDERS)) {
    test(name, () => {
      const objs = render(args);
      const maps = objs.filter((o) => o.kind === 'ConfigMap');
      assert.ok(maps.length > 0);
      for (const cm of maps) {
        const data = cm.data as Record<string, string>;
        if ('edge.yaml' in data) {
          const cfg = parseEdgeConfig(parseYaml(data['edge.yaml'] as string), `${name} ${cm.metadata.name} edge.yaml`);
          // kubelet probes the pod's address, not loopback.
          assert.equal(cfg.admin.listen, '0.0.0.0:9464');
          assert.equal(cfg.control.tls.ca, '/etc/braid/tls/ca.crt');
        }
        if ('cloud.yaml' in data) {
          const cfg = parseCloudConfig(parseYaml(data['cloud.yaml'] as string), `${name} ${cm.metadata.name} cloud.yaml`);
          assert.equal(cfg.admin.listen, '0.0.0.0:9465');
          assert.equal(cfg.control.listen, '0.0.0.0:7443');
          assert.equal(cfg.dataPlane.listen, '0.0.0.0:7000');
          if (name !== 'everything') assert.equal(cfg.dataPlane.publicHost, 'braid-cloud-data.braid.svc');
        }
      }
    });
  }
  test('carrier metadata reaches edge.yaml; empty metadata fields are left out', () => {
    const edge = parseEdgeConfig(parseYaml((find(render(EVERYTHING), 'ConfigMap', 'braid-edge').data as Json)['edge.yaml'] as string));
    assert.deepEqual(edge.carriers[1], { name: 'nr-b', interface: 'wwan1', metadata: { operator: 'Vodafone', mcc: '262', mnc: '02', technology: 'nr' } });
    const dflt = parseEdgeConfig(parseYaml((find(render([]), 'ConfigMap', 'braid-edge').data as Json)['edge.yaml'] as string));
    assert.deepEqual(dflt.carriers[0]?.metadata, { technology: 'lte' });
    assert.equal(dflt.control.cloud, 'braid-cloud-grpc.braid.svc:7443');
  });
  test('edge.config / cloud.config pass further documented keys through, still validated', () => {
    const objs = render(['--set', 'edge.config.dataPlane.keepaliveMs=500', '--set', 'cloud.config.maxSessions=77']);
    const edge = parseEdgeConfig(parseYaml((find(objs, 'ConfigMap', 'braid-edge').data as Json)['edge.yaml'] as string));
    const cloud = parseCloudConfig(parseYaml((find(objs, 'ConfigMap', 'braid-cloud').data as Json)['cloud.yaml'] as string));
    assert.equal(edge.dataPlane.keepaliveMs, 500);
    assert.equal(cloud.maxSessions, 77);
    const bad = render(['--set', 'cloud.config.maxSessionz=1']);
    assert.throws(() => parseCloudConfig(parseYaml((find(bad, 'ConfigMap', 'braid-cloud').data as Json)['cloud.yaml'] as string)),
      /maxSessionz: unknown key, did you mean "maxSessions"/);
  });
});

describe('roles', () => {
  test('default renders both roles; edge-only and cloud-only only their own', () => {
    const both = kinds(render([]));
    assert.ok(both.includes('DaemonSet/braid-edge') && both.includes('Deployment/braid-cloud'));
    const edge = kinds(render(EDGE_ONLY));
    assert.ok(edge.includes('DaemonSet/braid-edge'));
    assert.ok(!edge.some((k) => /cloud/.test(k)), `edge-only renders cloud objects: ${edge.join(' ')}`);
    assert.ok(!edge.some((k) => k.startsWith('Secret/')), 'existingSecret mode renders no Secret');
    const cloud = kinds(render(CLOUD_ONLY));
    assert.ok(cloud.includes('Deployment/braid-cloud'));
    assert.ok(!cloud.some((k) => /edge/.test(k)), `cloud-only renders edge objects: ${cloud.join(' ')}`);
  });
  test('cloud.replicas is the Deployment replica count (an integer)', () => {
    assert.equal(at(find(render(['--set', 'cloud.replicas=5']), 'Deployment'), 'spec', 'replicas'), 5);
  });
});

describe('pods', () => {
  const objs = render(EVERYTHING);
  for (const [kind, role] of [['DaemonSet', 'edge'], ['Deployment', 'cloud']] as const) {
    test(`${role}: hardened securityContext, NET_ADMIN only, /dev/net/tun as a CharDevice`, () => {
      const w = find(objs, kind);
      const sc = container(w).securityContext as Json;
      assert.deepEqual(at(sc, 'capabilities'), { drop: ['ALL'], add: ['NET_ADMIN'] });
      assert.equal(sc.allowPrivilegeEscalation, false);
      assert.equal(sc.readOnlyRootFilesystem, true);
      assert.equal(sc.privileged, false);
      assert.equal(at(podSpec(w), 'securityContext', 'seccompProfile', 'type'), 'RuntimeDefault');
      const tun = (podSpec(w).volumes as Json[]).find((v) => v.name === 'tun');
      assert.deepEqual(tun?.hostPath, { path: '/dev/net/tun', type: 'CharDevice' });
    });
    test(`${role}: startup, liveness and readiness probe distinct admin endpoints`, () => {
      const c = container(w0(kind));
      const paths = ['startupProbe', 'livenessProbe', 'readinessProbe'].map((p) => at(c, p, 'httpGet', 'path'));
      assert.deepEqual(paths, ['/startupz', '/livez', '/readyz']);
      for (const p of ['startupProbe', 'livenessProbe', 'readinessProbe']) assert.equal(at(c, p, 'httpGet', 'port'), 'admin');
    });
    test(`${role}: OTLP endpoint, sampling and Downward API resource attributes`, () => {
      const env = Object.fromEntries((container(w0(kind)).env as Json[]).map((e) => [e.name, e.value ?? at(e, 'valueFrom', 'fieldRef', 'fieldPath')]));
      assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://otel-collector:4318');
      assert.equal(env.OTEL_TRACES_SAMPLER, 'parentbased_traceidratio');
      assert.equal(env.OTEL_TRACES_SAMPLER_ARG, '0.05');
      assert.equal(env.POD_NAME, 'metadata.name');
      assert.equal(env.NODE_NAME, 'spec.nodeName');
      assert.match(String(env.OTEL_RESOURCE_ATTRIBUTES), /k8s\.pod\.name=\$\(POD_NAME\).*k8s\.namespace\.name=\$\(POD_NAMESPACE\).*k8s\.node\.name=\$\(NODE_NAME\)/);
    });
  }
  function w0(kind: string): K8sObject { return find(objs, kind); }
  test('edge: node selector, hostNetwork by default, Multus annotation in multus mode', () => {
    const dflt = find(render([]), 'DaemonSet');
    assert.deepEqual(podSpec(dflt).nodeSelector, { 'braid.io/edge': 'true' });
    assert.equal(podSpec(dflt).hostNetwork, true);
    assert.equal(podSpec(dflt).dnsPolicy, 'ClusterFirstWithHostNet');
    const multus = find(objs, 'DaemonSet');
    assert.equal(podSpec(multus).hostNetwork, undefined);
    assert.deepEqual(JSON.parse(String(at(multus, 'spec', 'template', 'metadata', 'annotations', 'k8s.v1.cni.cncf.io/networks'))), [
      { name: 'lte-a-net', namespace: 'braid', interface: 'wwan0' }, { name: 'lte-b-net', namespace: 'braid', interface: 'wwan1' },
    ]);
    assert.deepEqual(at(podSpec(multus), 'securityContext', 'sysctls'), [
      { name: 'net.ipv4.ip_forward', value: '1' },
    ]);
  });
  test('cloud: UDP data Service, gRPC Service, headless Service for discovery', () => {
    const data = find(objs, 'Service', 'braid-cloud-data');
    assert.deepEqual(at(data, 'spec', 'ports', 0, 'protocol'), 'UDP');
    assert.equal(at(data, 'spec', 'type'), 'LoadBalancer');
    const grpc = find(objs, 'Service', 'braid-cloud-grpc');
    assert.equal(at(grpc, 'spec', 'ports', 0, 'appProtocol'), 'grpc');
    const peers = find(objs, 'Service', 'braid-cloud-peers');
    assert.equal(at(peers, 'spec', 'clusterIP'), 'None');
  });
});

describe('RBAC is exactly what the code reads', () => {
  test('cloud: list/watch EndpointSlices in its namespace; edge: get nodes only when asked', () => {
    const objs = render(EVERYTHING);
    assert.deepEqual(find(objs, 'Role').rules, [{ apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] }]);
    assert.deepEqual(find(objs, 'ClusterRole').rules, [{ apiGroups: [''], resources: ['nodes'], verbs: ['get'] }]);
    const dflt = render([]);
    assert.ok(!dflt.some((o) => o.kind === 'ClusterRole'), 'no ClusterRole unless edge.readNodeAnnotations');
    assert.equal(podSpec(find(dflt, 'DaemonSet')).automountServiceAccountToken, false);
    assert.equal(podSpec(find(dflt, 'Deployment')).automountServiceAccountToken, true);
    assert.equal(find(dflt, 'ServiceAccount').automountServiceAccountToken, false);
    const none = render(['--set', 'cloud.discovery.enabled=false']);
    assert.ok(!none.some((o) => o.kind === 'Role' || o.kind === 'RoleBinding'));
  });
});

describe('HA overlay', () => {
  test('>= 3 replicas, required anti-affinity, PDB, spread, HPA, priority class', () => {
    const objs = render(HA);
    const d = find(objs, 'Deployment');
    const hpa = find(objs, 'HorizontalPodAutoscaler');
    assert.ok((at(hpa, 'spec', 'minReplicas') as number) >= 3);
    assert.ok(at(podSpec(d), 'affinity', 'podAntiAffinity', 'requiredDuringSchedulingIgnoredDuringExecution'));
    assert.equal(at(find(objs, 'PodDisruptionBudget'), 'spec', 'maxUnavailable'), 1);
    assert.equal(at(podSpec(d), 'topologySpreadConstraints', 0, 'topologyKey'), 'topology.kubernetes.io/zone');
    assert.deepEqual(at(podSpec(d), 'topologySpreadConstraints', 0, 'labelSelector', 'matchLabels', 'app.kubernetes.io/component'), 'cloud');
    assert.equal(podSpec(d).priorityClassName, 'braid-critical');
    assert.equal(find(objs, 'PriorityClass').metadata.name, 'braid-critical');
    const noHpa = render([...HA, '--set', 'cloud.hpa.enabled=false']);
    assert.ok((at(find(noHpa, 'Deployment'), 'spec', 'replicas') as number) >= 3);
  });
});

describe('mTLS material', () => {
  test('generated: one CA; the cloud certificate names the gRPC Service; the edge CN is the fleet identity', () => {
    const objs = render([]);
    const pem = (name: string, key: string) => Buffer.from((find(objs, 'Secret', name).data as Record<string, string>)[key] as string, 'base64').toString();
    const ca = new X509Certificate(pem('braid-cloud-tls', 'ca.crt'));
    const cloud = new X509Certificate(pem('braid-cloud-tls', 'tls.crt'));
    const edge = new X509Certificate(pem('braid-edge-tls', 'tls.crt'));
    assert.equal(pem('braid-edge-tls', 'ca.crt'), pem('braid-cloud-tls', 'ca.crt'));
    assert.ok(cloud.verify(ca.publicKey) && edge.verify(ca.publicKey));
    assert.equal(cloud.checkHost('braid-cloud-grpc.braid.svc'), 'braid-cloud-grpc.braid.svc');
    assert.match(edge.subject, /CN=braid-edge/);
    assert.ok(pem('braid-cloud-tls', 'tls.key').includes('PRIVATE KEY'));
  });
  test('cert-manager: Certificates into the same Secret names, bootstrap CA issuer when none is given', () => {
    const objs = render(['--set', 'tls.mode=certManager']);
    assert.equal(at(find(objs, 'Certificate', 'braid-cloud-tls'), 'spec', 'secretName'), 'braid-cloud-tls');
    assert.equal(at(find(objs, 'Certificate', 'braid-edge-tls'), 'spec', 'commonName'), 'braid-edge');
    assert.ok(at(find(objs, 'Issuer', 'braid-ca'), 'spec', 'ca'));
    const own = render(['--set', 'tls.mode=certManager', '--set', 'tls.certManager.issuerRef.name=corp', '--set', 'tls.certManager.issuerRef.kind=ClusterIssuer']);
    assert.ok(!own.some((o) => o.kind === 'Issuer'));
    assert.equal(at(find(own, 'Certificate', 'braid-edge-tls'), 'spec', 'issuerRef', 'kind'), 'ClusterIssuer');
  });
});

describe('values.schema.json refuses bad values, naming the field', () => {
  const cases: [string, string[], RegExp][] = [
    ['cloud.replicas not an integer', ['--set-string', 'cloud.replicas=three'], /cloud\/replicas.*want integer/],
    ['unknown key', ['--set', 'cloud.replica=3'], /\/cloud.*additional propert.*'replica'/],
    ['edge.enabled not a boolean', ['--set-string', 'edge.enabled=yes'], /\/edge\/enabled.*want boolean/],
    ['mcc with two digits', ['--set-json', 'edge.carriers=[{"name":"a","interface":"wwan0","metadata":{"mcc":"26"}}]'], /\/edge\/carriers\/0\/metadata\/mcc/],
    ['bad carrier interface', ['--set-json', 'edge.carriers=[{"name":"a","interface":"wwan0:1"}]'], /\/edge\/carriers\/0\/interface/],
    ['bad client subnet', ['--set-json', 'edge.interception.clientSubnets=["10.0.0.0"]'], /\/edge\/interception\/clientSubnets\/0/],
    ['port out of range', ['--set', 'cloud.dataPort=70000'], /\/cloud\/dataPort.*maximum/],
    ['unknown tls mode', ['--set', 'tls.mode=magic'], /\/tls\/mode/],
    ['edge-only without a cloud address', ['--set', 'cloud.enabled=false'], /\/edge\/cloudAddress/],
    ['existingSecret mode without a Secret name', ['--set', 'tls.mode=existingSecret'], /\/tls\/existingSecret\/(cloud|edge)/],
    ['sampler ratio out of range', ['--set-string', 'observability.traces.samplerArg=2'], /\/observability\/traces\/samplerArg/],
  ];
  for (const [name, args, re] of cases) {
    test(name, () => {
      const r = helm(['template', 'braid', CHART, ...args]);
      assert.notEqual(r.status, 0, `${name}: helm accepted it`);
      assert.match(r.stderr, re);
    });
  }
});

test('NOTES.txt renders for an install', () => {
  const r = helm(['install', 'braid', CHART, '--dry-run=client', '--namespace', 'braid']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Cloud: 2 replica\(s\)/);
  assert.match(r.stdout, /helm test braid/);
});

test('helm test pod: no capabilities, non-root, checks /readyz and the control port', () => {
  const pod = find(render([]), 'Pod');
  assert.equal(at(pod, 'metadata', 'annotations', 'helm.sh/hook'), 'test');
  assert.equal(at(pod, 'spec', 'securityContext', 'runAsNonRoot'), true);
  const c = (at(pod, 'spec', 'containers') as Json[])[0] as Json;
  assert.deepEqual(at(c, 'securityContext', 'capabilities'), { drop: ['ALL'] });
  assert.match(String((c.command as string[])[2]), /\/readyz/);
});
