{{/* The pod template shared by the DaemonSet and the Deployment. */}}
{{- define "polku.pod" -}}
{{- include "polku.validate" . }}
{{- $v := .Values }}
{{- $nodeOptions := include "polku.nodeOptions" . }}
metadata:
  labels:
    {{- include "polku.labels" . | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if or $v.pipeline.module $v.podAnnotations }}
  annotations:
    {{- if $v.pipeline.module }}
    {{- /* Pods roll when the module changes (a mounted ConfigMap alone would change under a running gateway that never reloads it). */}}
    checksum/pipeline: {{ $v.pipeline.module | sha256sum }}
    {{- end }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
spec:
  serviceAccountName: {{ include "polku.serviceAccountName" . }}
  {{- /* Only discovery and the Kubernetes enricher talk to the API server: without them, no token in the pod. */}}
  automountServiceAccountToken: {{ or $v.discovery.enabled $v.kubernetesEnricher.enabled }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  {{- if and $v.durable.enabled (not $v.durable.existingClaim) $v.durable.fixPermissions }}
  initContainers:
    - name: durable-permissions
      image: {{ include "polku.image" . }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command:
        - sh
        - -c
        - chown {{ $v.securityContext.runAsUser | default 10001 }}:{{ $v.securityContext.runAsGroup | default 10001 }} /var/lib/polku && chmod 0750 /var/lib/polku
      securityContext:
        runAsNonRoot: false
        runAsUser: 0
        runAsGroup: 0
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
        privileged: false
        capabilities:
          drop:
            - ALL
          add:
            - CHOWN
            - FOWNER
        seccompProfile:
          type: RuntimeDefault
      resources:
        requests:
          cpu: 10m
          memory: 16Mi
        limits:
          cpu: 100m
          memory: 32Mi
      volumeMounts:
        - name: durable
          mountPath: /var/lib/polku
  {{- end }}
  containers:
    - name: polku
      image: {{ include "polku.image" . }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args:
        - serve
      ports:
        - name: grpc
          containerPort: {{ $v.ports.grpc.containerPort }}
          protocol: TCP
          {{- if gt (int $v.ports.grpc.hostPort) 0 }}
          hostPort: {{ $v.ports.grpc.hostPort }}
          {{- end }}
        - name: metrics
          containerPort: {{ $v.ports.metrics.containerPort }}
          protocol: TCP
        {{- if $v.otlp.grpc.enabled }}
        - name: otlp-grpc
          containerPort: {{ $v.otlp.grpc.port }}
          protocol: TCP
        {{- end }}
        {{- if $v.otlp.http.enabled }}
        - name: otlp-http
          containerPort: {{ $v.otlp.http.port }}
          protocol: TCP
        {{- end }}
        {{- if $v.http.enabled }}
        - name: http
          containerPort: {{ $v.http.port }}
          protocol: TCP
        {{- end }}
      env:
        - name: NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        - name: HOST_IP
          valueFrom:
            fieldRef:
              fieldPath: status.hostIP
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        - name: POLKU_GRPC_ADDR
          value: {{ printf "%s:%d" $v.listenHost (int $v.ports.grpc.containerPort) | quote }}
        - name: POLKU_METRICS_ADDR
          value: {{ printf "%s:%d" $v.listenHost (int $v.ports.metrics.containerPort) | quote }}
        - name: POLKU_OTLP_GRPC_ADDR
          value: {{ ternary (printf "%s:%d" $v.listenHost (int $v.otlp.grpc.port)) "off" $v.otlp.grpc.enabled | quote }}
        - name: POLKU_OTLP_HTTP_ADDR
          value: {{ ternary (printf "%s:%d" $v.listenHost (int $v.otlp.http.port)) "off" $v.otlp.http.enabled | quote }}
        - name: POLKU_HTTP_ADDR
          value: {{ ternary (printf "%s:%d" $v.listenHost (int $v.http.port)) "off" $v.http.enabled | quote }}
        - name: POLKU_HTTP_MAX_BODY_BYTES
          value: {{ int64 $v.http.maxBodyBytes | quote }}
        - name: POLKU_HTTP_REQUEST_TIMEOUT_MS
          value: {{ int64 $v.http.requestTimeoutMs | quote }}
        - name: POLKU_LOG_LEVEL
          value: {{ $v.config.logLevel | quote }}
        - name: POLKU_BUFFER_CAPACITY
          value: {{ int64 $v.config.buffer.capacity | quote }}
        - name: POLKU_BUFFER_MAX_BYTES
          value: {{ int64 $v.config.buffer.maxBytes | quote }}
        - name: POLKU_OVERFLOW_POLICY
          value: {{ $v.config.buffer.overflowPolicy | quote }}
        - name: POLKU_BATCH_SIZE
          value: {{ int64 $v.config.delivery.batchSize | quote }}
        - name: POLKU_FLUSH_INTERVAL_MS
          value: {{ int64 $v.config.delivery.flushIntervalMs | quote }}
        - name: POLKU_EMIT_MAX_ATTEMPTS
          value: {{ int64 $v.config.delivery.emitMaxAttempts | quote }}
        - name: POLKU_SHUTDOWN_TIMEOUT_MS
          value: {{ int64 $v.config.shutdownTimeoutMs | quote }}
        - name: POLKU_MAX_MESSAGE_BYTES
          value: {{ int64 $v.limits.messageBytes | quote }}
        - name: POLKU_MAX_BATCH_EVENTS
          value: {{ int64 $v.limits.batchEvents | quote }}
        - name: POLKU_MAX_PAYLOAD_BYTES
          value: {{ int64 $v.limits.payloadBytes | quote }}
        - name: POLKU_MAX_METADATA_BYTES
          value: {{ int64 $v.limits.metadataBytes | quote }}
        - name: POLKU_MAX_EVENT_BYTES
          value: {{ int64 $v.limits.eventBytes | quote }}
        - name: POLKU_MAX_JSON_DEPTH
          value: {{ int64 $v.limits.jsonDepth | quote }}
        - name: POLKU_MAX_CONNECTIONS
          value: {{ int64 $v.connections.max | quote }}
        - name: POLKU_HANDSHAKE_TIMEOUT_MS
          value: {{ int64 $v.connections.handshakeTimeoutMs | quote }}
        - name: POLKU_IDLE_TIMEOUT_MS
          value: {{ int64 $v.connections.idleTimeoutMs | quote }}
        - name: POLKU_MAX_STREAMS_PER_CONNECTION
          value: {{ int64 $v.connections.maxStreamsPerConnection | quote }}
        - name: POLKU_METRICS_MAX_CONNECTIONS
          value: {{ int64 $v.connections.metricsMax | quote }}
        {{- if $v.discovery.enabled }}
        - name: POLKU_DISCOVERY
          value: kubernetes
        - name: POLKU_DISCOVERY_NAMESPACES
          value: {{ join "," $v.discovery.namespaces | quote }}
        - name: POLKU_DISCOVERY_LABEL_SELECTOR
          value: {{ $v.discovery.labelSelector | quote }}
        {{- end }}
        {{- if $v.kubernetesEnricher.enabled }}
        - name: POLKU_K8S_ENRICH
          value: "true"
        - name: POLKU_K8S_ENRICH_LABELS
          value: {{ join "," $v.kubernetesEnricher.labels | quote }}
        - name: POLKU_K8S_ENRICH_MAX_PODS
          value: {{ int64 $v.kubernetesEnricher.maxPods | quote }}
        - name: POLKU_K8S_ENRICH_DELETE_GRACE_MS
          value: {{ int64 $v.kubernetesEnricher.deleteGraceMs | quote }}
        {{- end }}
        - name: POLKU_REGISTRY
          value: {{ ternary "on" "off" $v.registry.enabled | quote }}
        - name: POLKU_REGISTRY_HEARTBEAT_MS
          value: {{ int64 $v.registry.heartbeatIntervalMs | quote }}
        - name: POLKU_REGISTRY_MISSED_BEATS
          value: {{ int64 $v.registry.missedBeats | quote }}
        - name: POLKU_REGISTRY_HEALTH_INTERVAL_MS
          value: {{ int64 $v.registry.healthIntervalMs | quote }}
        - name: POLKU_REGISTRY_MAX_PLUGINS
          value: {{ int64 $v.registry.maxPlugins | quote }}
        {{- with $v.registry.allowlist }}
        {{- /* After HOST_IP above, so an entry may say $(HOST_IP)/32. Null: the gateway's default. */}}
        - name: POLKU_REGISTRY_ALLOWLIST
          value: {{ join "," . | quote }}
        {{- end }}
        - name: POLKU_REGISTRY_REGISTER_RATE
          value: {{ int64 $v.registry.registerRate | quote }}
        - name: POLKU_REGISTRY_REGISTER_BURST
          value: {{ int64 $v.registry.registerBurst | quote }}
        {{- if or $v.registryToken.existingSecret (include "polku.registryTokenRendered" .) }}
        - name: POLKU_REGISTRY_TOKEN
          valueFrom:
            secretKeyRef:
              name: {{ include "polku.registryTokenSecretName" . }}
              key: {{ $v.registryToken.secretKey }}
        {{- end }}
        {{- if include "polku.hasPipeline" . }}
        - name: POLKU_CONFIG
          value: /etc/polku/polku.config.ts
        {{- end }}
        {{- if $v.durable.enabled }}
        - name: POLKU_DURABLE
          value: "true"
        - name: POLKU_DATA_DIR
          value: /var/lib/polku
        - name: POLKU_DURABLE_MAX_BYTES
          value: {{ int64 $v.durable.maxBytes | quote }}
        - name: POLKU_IDEMPOTENCY_MAX_KEYS
          value: {{ int64 $v.durable.idempotencyMaxKeys | quote }}
        {{- end }}
        {{- if $v.tls.enabled }}
        - name: POLKU_TLS_CERT_FILE
          value: /var/run/polku/tls/tls.crt
        - name: POLKU_TLS_KEY_FILE
          value: /var/run/polku/tls/tls.key
        {{- if $v.tls.clientCA }}
        - name: POLKU_TLS_CLIENT_CA_FILE
          value: /var/run/polku/tls/ca.crt
        {{- end }}
        - name: POLKU_TLS_RELOAD_INTERVAL_MS
          value: {{ int64 $v.tls.reloadIntervalMs | quote }}
        {{- if $v.tls.plugins }}
        - name: POLKU_PLUGIN_TLS_CA_FILE
          value: /var/run/polku/tls/ca.crt
        - name: POLKU_PLUGIN_TLS_CERT_FILE
          value: /var/run/polku/tls/tls.crt
        - name: POLKU_PLUGIN_TLS_KEY_FILE
          value: /var/run/polku/tls/tls.key
        {{- end }}
        {{- end }}
        {{- if $v.tenants.existingSecret }}
        - name: POLKU_TENANTS_FILE
          value: {{ printf "/var/run/polku/tenants/%s" $v.tenants.secretKey | quote }}
        {{- end }}
        {{- if $nodeOptions }}
        - name: NODE_OPTIONS
          value: {{ $nodeOptions | quote }}
        {{- end }}
        {{- range $v.envFromSecrets }}
        - name: {{ .env | quote }}
          valueFrom:
            secretKeyRef:
              name: {{ .secret | quote }}
              key: {{ .key | quote }}
              {{- if .optional }}
              optional: true
              {{- end }}
        {{- end }}
        {{- with $v.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $v.extraEnvFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      startupProbe:
        {{- if $v.tls.enabled }}
        {{- /* The kubelet's gRPC probe speaks no TLS: the port accepting connections is the sign instead. */}}
        tcpSocket:
          port: grpc
        {{- else }}
        grpc:
          port: {{ $v.ports.grpc.containerPort }}
          service: ""
        {{- end }}
        periodSeconds: {{ $v.probes.startup.periodSeconds }}
        failureThreshold: {{ $v.probes.startup.failureThreshold }}
        timeoutSeconds: {{ $v.probes.startup.timeoutSeconds }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: metrics
          {{- if $v.tls.enabled }}
          scheme: HTTPS
          {{- end }}
        periodSeconds: {{ $v.probes.readiness.periodSeconds }}
        failureThreshold: {{ $v.probes.readiness.failureThreshold }}
        timeoutSeconds: {{ $v.probes.readiness.timeoutSeconds }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: metrics
          {{- if $v.tls.enabled }}
          scheme: HTTPS
          {{- end }}
        periodSeconds: {{ $v.probes.liveness.periodSeconds }}
        failureThreshold: {{ $v.probes.liveness.failureThreshold }}
        timeoutSeconds: {{ $v.probes.liveness.timeoutSeconds }}
      {{- with $v.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if include "polku.hasPipeline" . }}
        - name: pipeline
          mountPath: /etc/polku
          readOnly: true
        {{- end }}
        {{- if $v.durable.enabled }}
        - name: durable
          mountPath: /var/lib/polku
        {{- end }}
        {{- if $v.tls.enabled }}
        - name: tls
          mountPath: /var/run/polku/tls
          readOnly: true
        {{- end }}
        {{- if $v.tenants.existingSecret }}
        - name: tenants
          mountPath: /var/run/polku/tenants
          readOnly: true
        {{- end }}
        {{- with $v.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if include "polku.hasPipeline" . }}
    - name: pipeline
      configMap:
        name: {{ include "polku.pipelineConfigMapName" . }}
        items:
          - key: polku.config.ts
            path: polku.config.ts
    {{- end }}
    {{- if $v.durable.enabled }}
    - name: durable
      {{- if $v.durable.existingClaim }}
      persistentVolumeClaim:
        claimName: {{ $v.durable.existingClaim }}
      {{- else }}
      hostPath:
        path: {{ $v.durable.hostPath }}
        type: DirectoryOrCreate
      {{- end }}
    {{- end }}
    {{- if $v.tls.enabled }}
    {{- /* Mounted whole (no subPath): the kubelet swaps the files atomically on renewal and the gateway re-reads them. */}}
    - name: tls
      secret:
        secretName: {{ $v.tls.secretName }}
    {{- end }}
    {{- if $v.tenants.existingSecret }}
    {{- /* Mounted whole (no subPath): the kubelet swaps ..data on an update and the gateway reloads the table. */}}
    - name: tenants
      secret:
        secretName: {{ $v.tenants.existingSecret }}
        items:
          - key: {{ $v.tenants.secretKey }}
            path: {{ $v.tenants.secretKey }}
    {{- end }}
    {{- with $v.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if eq $v.mode "deployment" }}
  {{- with $v.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- end }}
{{- end }}
