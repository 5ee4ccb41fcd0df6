/**
 * The metadata keys POLKU itself writes on events: the agents' ingestors (tapio, elava, portti)
 * and the Kubernetes enricher. One vocabulary, so a filter, a router or an emitter reads a pod's
 * name from the same key whichever agent reported it.
 *
 * Names follow the OpenTelemetry semantic conventions where one exists (k8s.*, container.*,
 * cloud.*), which is also what the OpenTelemetry Collector's k8sattributes processor writes; keys
 * of POLKU's own start with `polku.`. The README's agent table lists which agent field lands where.
 */

// Kubernetes placement.
export const K8S_CLUSTER_NAME = 'k8s.cluster.name';
export const K8S_NODE_NAME = 'k8s.node.name';
export const K8S_NAMESPACE_NAME = 'k8s.namespace.name';
export const K8S_POD_NAME = 'k8s.pod.name';
export const K8S_POD_UID = 'k8s.pod.uid';
export const K8S_POD_IP = 'k8s.pod.ip';
export const K8S_CONTAINER_NAME = 'k8s.container.name';
export const CONTAINER_ID = 'container.id';
/** A pod label `app` is written as `k8s.pod.labels.app`. */
export const K8S_POD_LABEL_PREFIX = 'k8s.pod.labels.';
/** The pod's owners, by kind: `k8s.deployment.name`, `k8s.replicaset.name`, `k8s.daemonset.name`, … */
export const K8S_DEPLOYMENT_NAME = 'k8s.deployment.name';
export const K8S_REPLICASET_NAME = 'k8s.replicaset.name';
export const K8S_DAEMONSET_NAME = 'k8s.daemonset.name';
export const K8S_STATEFULSET_NAME = 'k8s.statefulset.name';
export const K8S_JOB_NAME = 'k8s.job.name';
export const K8S_CRONJOB_NAME = 'k8s.cronjob.name';

// A Kubernetes API object that changed (PORTTI).
export const K8S_OBJECT_KIND = 'k8s.object.kind';
export const K8S_OBJECT_NAME = 'k8s.object.name';
export const K8S_OBJECT_UID = 'k8s.object.uid';
export const K8S_OBJECT_RESOURCE_VERSION = 'k8s.object.resource_version';
export const K8S_OBJECT_GENERATION = 'k8s.object.generation';
/** The object's label `app` is written as `k8s.object.labels.app`. */
export const K8S_OBJECT_LABEL_PREFIX = 'k8s.object.labels.';
/** The object's annotation `a` is written as `k8s.object.annotations.a`. */
export const K8S_OBJECT_ANNOTATION_PREFIX = 'k8s.object.annotations.';

// A cloud resource (ELAVA).
export const CLOUD_PROVIDER = 'cloud.provider';
export const CLOUD_REGION = 'cloud.region';
export const CLOUD_ACCOUNT_ID = 'cloud.account.id';
export const CLOUD_RESOURCE_ID = 'cloud.resource_id';
export const CLOUD_AVAILABILITY_ZONE = 'cloud.availability_zone';
/** The resource's name as the cloud shows it (no OpenTelemetry convention: POLKU's own). */
export const CLOUD_RESOURCE_NAME = 'polku.cloud.resource_name';
/** The resource's type as the agent names it (ELAVA's `resource_type`, e.g. `s3_bucket`). */
export const CLOUD_RESOURCE_TYPE = 'polku.cloud.resource_type';
/** The resource's tag `team` is written as `polku.cloud.tags.team`. */
export const CLOUD_RESOURCE_TAG_PREFIX = 'polku.cloud.tags.';

/**
 * How to read the event's payload, when POLKU made it from an agent's message:
 * `protobuf:<full message name>` (e.g. `protobuf:tapio.v1.RawEbpfEvent`, the message exactly as
 * the agent sent it; decode it with the .proto files shipped in the package's proto/ folder) or
 * `json`.
 */
export const PAYLOAD_FORMAT = 'polku.payload.format';

// OpenTelemetry logs received over OTLP (src/receive/otlp; the README's "OpenTelemetry (OTLP) in").
/** `polku.payload.format` of a log record whose body was a string: the payload is that text, UTF-8. */
export const PAYLOAD_FORMAT_TEXT = 'text';
/** `polku.payload.format` of a payload that is one JSON value (an OTLP structured body, say). */
export const PAYLOAD_FORMAT_JSON = 'json';
/** The W3C trace id the record carries, 32 lower-case hex digits (the OTLP field's name). */
export const TRACE_ID = 'trace_id';
/** The span id the record carries, 16 lower-case hex digits. */
export const SPAN_ID = 'span_id';
/** The record's severity as the source wrote it (`WARN`, `Error`…), beside the mapped Severity. */
export const SEVERITY_TEXT = 'severity_text';
/** The resource attribute naming the service; an OTLP record's event source. */
export const SERVICE_NAME = 'service.name';
/** The instrumentation scope that emitted the record (the logger's name) and its version. */
export const OTEL_SCOPE_NAME = 'otel.scope.name';
export const OTEL_SCOPE_VERSION = 'otel.scope.version';
/** A log record attribute `user.id` is written as `otel.attr.user.id` (resource attributes keep their own names). */
export const OTEL_ATTRIBUTE_PREFIX = 'otel.attr.';

// Tenants and the HTTP front door (src/tenants, src/receive/http; the README's "Tenants").
/** The tenant whose API key sent the event; set by the hub when tenants are configured. */
export const TENANT = 'polku.tenant';
/** PulseGate's idempotency key: the HTTP `Idempotency-Key` header, or the event's own metadata. */
export const IDEMPOTENCY_KEY = 'idempotency_key';
