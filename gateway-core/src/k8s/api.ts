// The real Kubernetes API behind the two interfaces the gateways use (EndpointSliceSource,
// NodeSource), through @kubernetes/client-node. Everything else in this folder is pure logic
// tested with recorded API objects; this file is the thin part that talks HTTP.
import { existsSync } from 'node:fs';
import { CoreV1Api, DiscoveryV1Api, KubeConfig, Watch, type V1EndpointSlice, type V1Node } from '@kubernetes/client-node';
import type { EndpointSliceSource, WatchPhase } from './discovery.js';
import type { NodeSource } from './node-carriers.js';

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** In a pod with a service-account token mounted (the chart mounts it only where code reads the API). */
export function inCluster(env: NodeJS.ProcessEnv = process.env, saDir = SA_DIR): boolean {
  return !!env.KUBERNETES_SERVICE_HOST && !!env.KUBERNETES_SERVICE_PORT && existsSync(`${saDir}/token`);
}

/** The pod's namespace, from POD_NAMESPACE (the chart sets it through the Downward API). */
export function podNamespace(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.POD_NAMESPACE || undefined;
}

/** The in-cluster config, or undefined outside a cluster. */
export function inClusterKubeConfig(): KubeConfig | undefined {
  if (!inCluster()) return undefined;
  const kc = new KubeConfig();
  kc.loadFromCluster();
  return kc;
}

export function clientNodeEndpointSliceSource(kc: KubeConfig): EndpointSliceSource {
  const api = kc.makeApiClient(DiscoveryV1Api);
  const watcher = new Watch(kc);
  return {
    async list(namespace, labelSelector) {
      const r = await api.listNamespacedEndpointSlice({ namespace, labelSelector });
      return { items: r.items, resourceVersion: r.metadata?.resourceVersion };
    },
    async watch(namespace, labelSelector, resourceVersion, onEvent, done) {
      const ctl = await watcher.watch(
        `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/endpointslices`,
        { labelSelector, resourceVersion, allowWatchBookmarks: true },
        (phase: string, obj: unknown) => onEvent(phase as WatchPhase, obj as V1EndpointSlice),
        (err: unknown) => done(err ? (err instanceof Error ? err : new Error(String(err))) : undefined),
      );
      return { abort: () => ctl.abort() };
    },
  };
}

export function clientNodeNodeSource(kc: KubeConfig): NodeSource {
  const api = kc.makeApiClient(CoreV1Api);
  return { getNode: (name: string): Promise<V1Node> => api.readNode({ name }) };
}
