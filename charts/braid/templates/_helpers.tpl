{{/* Names ------------------------------------------------------------------------------- */}}
{{- define "braid.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "braid.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "braid.edgeName" -}}{{ include "braid.fullname" . }}-edge{{- end -}}
{{- define "braid.cloudName" -}}{{ include "braid.fullname" . }}-cloud{{- end -}}
{{- define "braid.cloudGrpcService" -}}{{ include "braid.fullname" . }}-cloud-grpc{{- end -}}
{{- define "braid.cloudDataService" -}}{{ include "braid.fullname" . }}-cloud-data{{- end -}}
{{- define "braid.cloudHeadlessService" -}}{{ include "braid.fullname" . }}-cloud-peers{{- end -}}

{{- define "braid.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "braid.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "braid.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Labels ------------------------------------------------------------------------------ */}}
{{- define "braid.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "braid.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: braid
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one role: (dict "root" $ "component" "edge") */}}
{{- define "braid.selectorLabels" -}}
app.kubernetes.io/name: {{ include "braid.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* TLS ------------------------------------------------------------------------------------ */}}
{{- define "braid.cloudTlsSecret" -}}
{{- if eq .Values.tls.mode "existingSecret" -}}{{ .Values.tls.existingSecret.cloud }}{{- else -}}{{ include "braid.fullname" . }}-cloud-tls{{- end -}}
{{- end -}}
{{- define "braid.edgeTlsSecret" -}}
{{- if eq .Values.tls.mode "existingSecret" -}}{{ .Values.tls.existingSecret.edge }}{{- else -}}{{ include "braid.fullname" . }}-edge-tls{{- end -}}
{{- end -}}

{{/* DNS names the cloud's server certificate must carry: its gRPC Service in every form. */}}
{{- define "braid.cloudDnsNames" -}}
{{- $svc := include "braid.cloudGrpcService" . -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) -}}
{{- concat $names .Values.tls.cloudDnsNames | uniq | toJson -}}
{{- end -}}

{{/* The edge's control-plane address: explicit, or this release's cloud gRPC Service. */}}
{{- define "braid.cloudAddress" -}}
{{- if .Values.edge.cloudAddress -}}
{{- .Values.edge.cloudAddress -}}
{{- else -}}
{{- printf "%s.%s.svc:%d" (include "braid.cloudGrpcService" .) .Release.Namespace (int .Values.cloud.controlPort) -}}
{{- end -}}
{{- end -}}

{{/* Gateway configs: the YAML files the binaries validate (gateway-core/src/config) --------- */}}
{{- define "braid.tlsFiles" -}}
{{- dict "ca" "/etc/braid/tls/ca.crt" "cert" "/etc/braid/tls/tls.crt" "key" "/etc/braid/tls/tls.key" | toJson -}}
{{- end -}}

{{- define "braid.edgeConfig" -}}
{{- $e := .Values.edge -}}
{{- $carriers := list -}}
{{- range $e.carriers -}}
{{- $c := dict "name" .name "interface" .interface -}}
{{- $md := dict -}}
{{- range $k, $v := (.metadata | default dict) -}}
{{- if $v -}}{{- $_ := set $md $k (toString $v) -}}{{- end -}}
{{- end -}}
{{- if $md -}}{{- $_ := set $c "metadata" $md -}}{{- end -}}
{{- $carriers = append $carriers $c -}}
{{- end -}}
{{- $control := dict "cloud" (include "braid.cloudAddress" .) "tls" (include "braid.tlsFiles" . | fromJson) -}}
{{- if $e.serverName -}}{{- $_ := set $control "serverName" $e.serverName -}}{{- end -}}
{{- $cfg := dict
  "control" $control
  "carriers" $carriers
  "tunnel" (dict "device" $e.tunnel.device "mtu" (int $e.tunnel.mtu))
  "interception" (deepCopy $e.interception)
  "admin" (dict "listen" (printf "%s:%d" $e.adminHost (int $e.adminPort)))
  "log" (deepCopy $e.log) -}}
{{- $cfg = mustMergeOverwrite $cfg (deepCopy $e.config) -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "braid.cloudConfig" -}}
{{- $c := .Values.cloud -}}
{{- $dp := dict "listen" (printf "0.0.0.0:%d" (int $c.dataPort)) -}}
{{- /* Edges send data where the Hello tells them: the configured public host, else the UDP
       data Service (resolvable by edges in this cluster; external edges need cloud.publicHost). */ -}}
{{- $_ := set $dp "publicHost" (default (printf "%s.%s.svc" (include "braid.cloudDataService" .) .Release.Namespace) $c.publicHost) -}}
{{- if $c.publicPort -}}{{- $_ := set $dp "publicPort" (int $c.publicPort) -}}{{- end -}}
{{- $egress := dict "nat" $c.egress.nat -}}
{{- if $c.egress.interface -}}{{- $_ := set $egress "interface" $c.egress.interface -}}{{- end -}}
{{- $cfg := dict
  "control" (dict "listen" (printf "0.0.0.0:%d" (int $c.controlPort)) "tls" (include "braid.tlsFiles" . | fromJson))
  "dataPlane" $dp
  "tunnel" (dict "device" $c.tunnel.device "mtu" (int $c.tunnel.mtu) "addressPool" $c.tunnel.addressPool)
  "egress" $egress
  "maxSessions" (int $c.maxSessions)
  "cluster" (dict "forwardPort" (int $c.forwardPort))
  "admin" (dict "listen" (printf "0.0.0.0:%d" (int $c.adminPort)))
  "log" (deepCopy $c.log) -}}
{{- $cfg = mustMergeOverwrite $cfg (deepCopy $c.config) -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* Pod pieces shared by both roles ------------------------------------------------------- */}}

{{/* Container securityContext of a gateway: root only for CAP_NET_ADMIN (see deploy/Dockerfile). */}}
{{- define "braid.gatewaySecurityContext" -}}
runAsUser: 0
runAsNonRoot: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
  add: [NET_ADMIN]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* env: Downward API identity, OpenTelemetry. (dict "root" $ "component" "edge" "workload" "k8s.daemonset.name=x") */}}
{{- define "braid.env" -}}
{{- $o := .root.Values.observability -}}
- name: NODE_NAME
  valueFrom: { fieldRef: { fieldPath: spec.nodeName } }
- name: POD_NAME
  valueFrom: { fieldRef: { fieldPath: metadata.name } }
- name: POD_NAMESPACE
  valueFrom: { fieldRef: { fieldPath: metadata.namespace } }
- name: POD_UID
  valueFrom: { fieldRef: { fieldPath: metadata.uid } }
- name: POD_IP
  valueFrom: { fieldRef: { fieldPath: status.podIP } }
- name: OTEL_SERVICE_NAME
  value: braid-{{ .component }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.pod.name=$(POD_NAME),k8s.pod.uid=$(POD_UID),k8s.namespace.name=$(POD_NAMESPACE),k8s.node.name=$(NODE_NAME),{{ .workload }},k8s.container.name={{ .component }},service.instance.id=$(POD_NAME),service.version={{ .root.Chart.AppVersion }}"
{{- if $o.otlp.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $o.otlp.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $o.otlp.protocol | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $o.traces.sampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $o.traces.samplerArg | quote }}
{{- else }}
# No collector configured: keep the SDK from trying to export anywhere.
- name: OTEL_TRACES_EXPORTER
  value: none
{{- end }}
{{- end -}}

{{/* Probes on distinct admin endpoints. (dict "probes" .Values.edge.probes) */}}
{{- define "braid.probes" -}}
startupProbe:
  httpGet: { path: /startupz, port: admin }
  periodSeconds: {{ .probes.startup.periodSeconds }}
  failureThreshold: {{ .probes.startup.failureThreshold }}
livenessProbe:
  httpGet: { path: /livez, port: admin }
  periodSeconds: {{ .probes.liveness.periodSeconds }}
  failureThreshold: {{ .probes.liveness.failureThreshold }}
readinessProbe:
  httpGet: { path: /readyz, port: admin }
  periodSeconds: {{ .probes.readiness.periodSeconds }}
  failureThreshold: {{ .probes.readiness.failureThreshold }}
{{- end -}}

{{/* Volumes every gateway pod has. (dict "root" $ "configMap" name "tlsSecret" name) */}}
{{- define "braid.volumes" -}}
- name: config
  configMap:
    name: {{ .configMap }}
- name: tls
  secret:
    secretName: {{ .tlsSecret }}
    defaultMode: 0400
    # Explicit: a gateway without its certificates cannot start (podman 4.3's kube play also
    # needs the field set).
    optional: false
- name: tun
  hostPath:
    path: /dev/net/tun
    type: CharDevice
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- end -}}

{{- define "braid.volumeMounts" -}}
- name: config
  mountPath: /etc/braid/config
  readOnly: true
- name: tls
  mountPath: /etc/braid/tls
  readOnly: true
- name: tun
  mountPath: /dev/net/tun
- name: tmp
  mountPath: /tmp
{{- end -}}
