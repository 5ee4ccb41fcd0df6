{{/* Names, labels and the values the templates share. */}}

{{- define "polku.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: the release name, plus the chart name unless the release name contains it. */}}
{{- define "polku.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Cluster-scoped objects are shared by every namespace: the release namespace keeps them apart. */}}
{{- define "polku.clusterScopedName" -}}
{{- printf "%s-%s" (include "polku.fullname" .) .Release.Namespace | trunc 253 | trimSuffix "-" }}
{{- end }}

{{- define "polku.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "polku.selectorLabels" -}}
app.kubernetes.io/name: {{ include "polku.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "polku.labels" -}}
helm.sh/chart: {{ include "polku.chart" . }}
{{ include "polku.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: polku
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "polku.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "polku.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "polku.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
"true" when the chart renders the registry token's Secret: a value was given, or the registry is
on, no existing Secret is named and registryToken.generate is true (the default).
*/}}
{{- define "polku.registryTokenRendered" -}}
{{- $t := .Values.registryToken -}}
{{- if or $t.value (and .Values.registry.enabled (not $t.existingSecret) $t.generate) -}}true{{- end -}}
{{- end }}

{{- define "polku.registryTokenSecretName" -}}
{{- if .Values.registryToken.existingSecret }}
{{- .Values.registryToken.existingSecret }}
{{- else }}
{{- printf "%s-registry-token" (include "polku.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "polku.pipelineConfigMapName" -}}
{{- if .Values.pipeline.existingConfigMap }}
{{- .Values.pipeline.existingConfigMap }}
{{- else }}
{{- printf "%s-pipeline" (include "polku.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* "true" when a pipeline module is mounted (from the value or an existing ConfigMap). */}}
{{- define "polku.hasPipeline" -}}
{{- if or .Values.pipeline.module .Values.pipeline.existingConfigMap }}true{{ end }}
{{- end }}

{{- define "polku.internalTrafficPolicy" -}}
{{- if .Values.service.internalTrafficPolicy }}
{{- .Values.service.internalTrafficPolicy }}
{{- else if eq .Values.mode "daemonset" }}Local
{{- else }}Cluster
{{- end }}
{{- end }}

{{/*
A memory quantity (resources.limits.memory) in MiB, rounded down; fails on a form it cannot read.
YAML numbers arrive as float64 bytes.
*/}}
{{- define "polku.quantityMiB" -}}
{{- $q := . }}
{{- if or (kindIs "float64" $q) (kindIs "int64" $q) (kindIs "int" $q) }}
{{- div (int64 $q) 1048576 }}
{{- else }}
{{- $s := toString $q }}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$" $s) }}
{{- fail (printf "cannot derive --max-old-space-size from resources.limits.memory=%q: use a plain number of bytes or a Ki/Mi/Gi/Ti/k/M/G/T suffix, or set nodeOptions.maxOldSpaceSizeMiB" $s) }}
{{- end }}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $s }}
{{- $unit := trimPrefix $num $s }}
{{- $factors := dict "" 1.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 }}
{{- floor (divf (mulf (float64 $num) (get $factors $unit)) 1048576.0) | int64 }}
{{- end }}
{{- end }}

{{/* NODE_OPTIONS for the gateway; empty when no flag applies. */}}
{{- define "polku.nodeOptions" -}}
{{- $o := .Values.nodeOptions }}
{{- $flags := list }}
{{- $heap := int64 $o.maxOldSpaceSizeMiB }}
{{- $limit := dig "limits" "memory" "" (.Values.resources | default dict) }}
{{- if and (eq $heap 0) $limit (gt (int64 $o.heapPercent) 0) }}
{{- $heap = div (mul (int64 (include "polku.quantityMiB" $limit)) (int64 $o.heapPercent)) 100 }}
{{- if lt $heap 32 }}
{{- fail (printf "nodeOptions: %d%% of resources.limits.memory=%v is %d MiB of heap, too little for the gateway (at least 32 MiB)" (int64 $o.heapPercent) $limit $heap) }}
{{- end }}
{{- end }}
{{- if gt $heap 0 }}
{{- $flags = append $flags (printf "--max-old-space-size=%d" $heap) }}
{{- end }}
{{- if gt (int64 $o.maxSemiSpaceSizeMiB) 0 }}
{{- $flags = append $flags (printf "--max-semi-space-size=%d" (int64 $o.maxSemiSpaceSizeMiB)) }}
{{- end }}
{{- with $o.extra }}
{{- $flags = append $flags . }}
{{- end }}
{{- join " " $flags }}
{{- end }}

{{/* The rollout strategy: the user's, or the chart's choice (values.yaml, updateStrategy). */}}
{{- define "polku.updateStrategy" -}}
{{- $pinned := or (gt (int .Values.ports.grpc.hostPort) 0) .Values.durable.enabled }}
{{- if .Values.updateStrategy }}
{{- toYaml .Values.updateStrategy }}
{{- else if eq .Values.mode "daemonset" }}
{{- if $pinned }}
type: RollingUpdate
rollingUpdate:
  maxSurge: 0
  maxUnavailable: 1
{{- else }}
type: RollingUpdate
rollingUpdate:
  maxSurge: 1
  maxUnavailable: 0
{{- end }}
{{- else if .Values.durable.enabled }}
type: Recreate
{{- else }}
type: RollingUpdate
rollingUpdate:
  maxSurge: 25%
  maxUnavailable: 0
{{- end }}
{{- end }}

{{/*
Checks that span several values (the schema checks each one alone). Rendered once, from _pod.tpl.
*/}}
{{- define "polku.validate" -}}
{{- $v := .Values }}
{{- $surge := dig "rollingUpdate" "maxSurge" 0 ($v.updateStrategy | default dict) }}
{{- $surges := and (ne (toString $surge) "0") (ne (toString $surge) "0%") }}
{{- $type := dig "type" "" ($v.updateStrategy | default dict) }}
{{- if and (eq $v.mode "daemonset") (eq $type "Recreate") }}
{{- fail "updateStrategy.type Recreate is for deployment mode: a DaemonSet rolls with RollingUpdate or OnDelete" }}
{{- end }}
{{- if and (eq $v.mode "deployment") (eq $type "OnDelete") }}
{{- fail "updateStrategy.type OnDelete is for daemonset mode: a Deployment rolls with RollingUpdate or Recreate" }}
{{- end }}
{{- if and (gt (int $v.ports.grpc.hostPort) 0) (ne $v.mode "daemonset") }}
{{- fail "ports.grpc.hostPort is for daemonset mode: in deployment mode agents dial the Service" }}
{{- end }}
{{- if and (gt (int $v.ports.grpc.hostPort) 0) $surges }}
{{- fail (printf "ports.grpc.hostPort forbids updateStrategy.rollingUpdate.maxSurge=%v: two pods cannot bind one node port; set maxSurge to 0 (or leave updateStrategy empty)" $surge) }}
{{- end }}
{{- if and $v.durable.enabled $surges }}
{{- fail (printf "durable.enabled forbids updateStrategy.rollingUpdate.maxSurge=%v: two gateways would share one durable log; set maxSurge to 0 (or leave updateStrategy empty)" $surge) }}
{{- end }}
{{- if and $v.durable.enabled $v.durable.existingClaim (eq $v.mode "daemonset") }}
{{- fail "durable.existingClaim is for deployment mode: in daemonset mode each node keeps its log in durable.hostPath" }}
{{- end }}
{{- if and $v.durable.enabled $v.durable.existingClaim (gt (int $v.replicaCount) 1) }}
{{- fail "durable.existingClaim holds one gateway's log: set replicaCount to 1" }}
{{- end }}
{{- if le (mul (int64 $v.terminationGracePeriodSeconds) 1000) (int64 $v.config.shutdownTimeoutMs) }}
{{- fail (printf "terminationGracePeriodSeconds (%d s) must be larger than config.shutdownTimeoutMs (%d ms), or the kubelet kills the gateway before it has drained" (int64 $v.terminationGracePeriodSeconds) (int64 $v.config.shutdownTimeoutMs)) }}
{{- end }}
{{- if and $v.tls.enabled (not $v.tls.secretName) }}
{{- fail "tls.enabled needs tls.secretName: a kubernetes.io/tls Secret with tls.crt and tls.key (and ca.crt for tls.clientCA or tls.plugins)" }}
{{- end }}
{{- if and (or $v.tls.clientCA $v.tls.plugins) (not $v.tls.enabled) }}
{{- fail "tls.clientCA and tls.plugins need tls.enabled" }}
{{- end }}
{{- if and $v.registryToken.value $v.registryToken.existingSecret }}
{{- fail "registryToken: set value or existingSecret, not both" }}
{{- end }}
{{- if and $v.registry.enabled (not (or $v.registryToken.value $v.registryToken.existingSecret $v.registryToken.generate)) }}
{{- fail "registry.enabled with no registry token: the gateway refuses an open registry on the pod's address. Keep registryToken.generate=true, set registryToken.existingSecret, or set registry.enabled=false" }}
{{- end }}
{{- if and $v.pipeline.module $v.pipeline.existingConfigMap }}
{{- fail "pipeline: set module or existingConfigMap, not both" }}
{{- end }}
{{- end }}

{{/* Whether RBAC objects are rendered: something needs the API server, and rbac.create. */}}
{{- define "polku.rbacEnabled" -}}
{{- if and .Values.rbac.create (or .Values.discovery.enabled .Values.kubernetesEnricher.enabled .Values.rbac.extraRules) }}true{{ end }}
{{- end }}

{{/* What discovery reads, read-only; plus rbac.extraRules. */}}
{{- define "polku.rbacRules" -}}
{{- if .Values.discovery.enabled }}
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch"]
{{- if .Values.discovery.endpointSlices }}
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- end }}
{{- with .Values.rbac.extraRules }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The ClusterRole's rules: discovery's when it watches every namespace, and the Kubernetes
enricher's pods (a node's pods span namespaces, so always cluster-wide) only when it is on. */}}
{{- define "polku.clusterRbacRules" -}}
{{- if not .Values.discovery.namespaces }}
{{ include "polku.rbacRules" . | trim }}
{{- end }}
{{- if .Values.kubernetesEnricher.enabled }}
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- end }}
