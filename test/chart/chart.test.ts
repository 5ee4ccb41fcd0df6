// The Helm chart (charts/polku), rendered by the real helm for each ci/*-values.yaml scenario and
// checked object by object: Kubernetes schemas, then what each feature promises.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { CHART, ensureHelm, get, helm, NAMESPACE, one, ofKind, parseManifests, RELEASE, ROOT, template, templateRaw } from './helm.js';
import type { K8sObject } from './helm.js';
import { describe as name, isKnownKind, schemaProblems, unknownFieldProblems } from './k8s-validate.js';
import { ENV_VARIABLES } from '../../src/config/env.js';
import { DEFAULT_ALLOWLIST } from '../../src/registry/allowlist.js';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: Record<string, Record<string, string>>;
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env: EnvVar[];
  ports: { name: string; containerPort: number; hostPort?: number; protocol: string }[];
  startupProbe: Record<string, unknown>;
  readinessProbe: Record<string, unknown>;
  livenessProbe: Record<string, unknown>;
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: Record<string, unknown>;
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes: { name: string; [source: string]: unknown }[];
  securityContext: Record<string, unknown>;
  terminationGracePeriodSeconds: number;
  automountServiceAccountToken: boolean;
  serviceAccountName: string;
  [field: string]: unknown;
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** The workload (DaemonSet or Deployment) of a render. */
function workload(objects: K8sObject[]): K8sObject {
  const found = objects.filter((o) => o.kind === 'DaemonSet' || o.kind === 'Deployment');
  assert.equal(found.length, 1, `one workload expected, found ${found.map(name).join(', ')}`);
  return found[0]!;
}
const podSpec = (objects: K8sObject[]) => get<PodSpec>(workload(objects), 'spec', 'template', 'spec');
const podMeta = (objects: K8sObject[]) => get<K8sObject['metadata']>(workload(objects), 'spec', 'template', 'metadata');
const gateway = (objects: K8sObject[]) => {
  const c = podSpec(objects).containers.find((x) => x.name === 'polku');
  assert.ok(c, 'the polku container');
  return c;
};
const env = (objects: K8sObject[]) => new Map(gateway(objects).env.map((e) => [e.name, e]));
const envValue = (objects: K8sObject[], key: string) => env(objects).get(key)?.value;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const REQUIRED_SCENARIOS = [
  'default',
  'deployment',
  'hostport',
  'namespaced-rbac',
  'servicemonitor',
  'durable',
  'existing-secret',
  'pipeline-module',
  'registry',
];
const scenarioFiles = readdirSync(join(CHART, 'ci'))
  .filter((f) => f.endsWith('-values.yaml'))
  .sort();
const scenarios = new Map<string, K8sObject[]>();
const scenario = (s: string) => {
  const objects = scenarios.get(s);
  assert.ok(objects, `scenario ${s} rendered`);
  return objects;
};

before(async () => {
  ensureHelm();
  const rendered = await Promise.all(scenarioFiles.map((f) => template({ valuesFiles: [`ci/${f}`] })));
  scenarioFiles.forEach((f, i) => scenarios.set(f.replace(/-values\.yaml$/, ''), rendered[i]!));
});

describe('chart: lint and render', () => {
  test('Chart.yaml: apiVersion v2, appVersion equal to package.json version, kubeVersion set', () => {
    const chart = parseYaml(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as Record<string, string>;
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(chart['apiVersion'], 'v2');
    assert.equal(chart['name'], 'polku');
    assert.equal(chart['appVersion'], pkg.version);
    assert.match(chart['kubeVersion'] ?? '', />=1\.27/);
  });

  test('helm lint --strict passes with the defaults and with every ci/ scenario', async () => {
    const runs = await Promise.all([
      helm(['lint', '--strict', CHART]),
      ...scenarioFiles.map((f) => helm(['lint', '--strict', CHART, '-f', join(CHART, 'ci', f)])),
    ]);
    runs.forEach((r, i) => assert.equal(r.code, 0, `lint ${i === 0 ? 'defaults' : scenarioFiles[i - 1]}:\n${r.stdout}${r.stderr}`));
    for (const r of runs) assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  test('ci/ holds one values file per required scenario, and each renders', () => {
    for (const s of REQUIRED_SCENARIOS) assert.ok(scenarios.has(s), `ci/${s}-values.yaml exists and renders`);
    for (const [s, objects] of scenarios) assert.ok(objects.length >= 3, `${s} renders objects`);
  });

  test('every object of every scenario is valid against the Kubernetes schemas', () => {
    const problems: string[] = [];
    for (const [s, objects] of scenarios) {
      for (const o of objects) {
        assert.ok(isKnownKind(o), `${s}: ${o.apiVersion}/${o.kind} has a schema to validate against`);
        problems.push(...schemaProblems(o).map((p) => `${s}: ${p}`));
      }
    }
    assert.deepEqual(problems, []);
  });

  test('no object of any scenario has a field Kubernetes does not know (strict field validation)', () => {
    const all = [...scenarios.values()].flat();
    assert.deepEqual(unknownFieldProblems(all), []);
  });

  test('the field check catches what it is for: an unknown field and a misspelt one', () => {
    const service = structuredClone(one(scenario('default'), 'Service'));
    const spec = service['spec'] as Record<string, unknown>;
    spec['internalTraficPolicy'] = 'Local';
    const problems = unknownFieldProblems([service]);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /Service\/polku: .*internalTraficPolicy/);
    const badPort = structuredClone(one(scenario('default'), 'Service'));
    get<Record<string, unknown>[]>(badPort, 'spec', 'ports')[0]!['port'] = 'fifty';
    assert.equal(schemaProblems(badPort).length, 1);
  });

  test('every namespaced object lands in the release namespace; cluster-scoped names carry it', () => {
    for (const [s, objects] of scenarios) {
      for (const o of objects) {
        if (o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding') {
          assert.equal(o.metadata.namespace, undefined, `${s}: ${name(o)}`);
          assert.equal(o.metadata.name, `${RELEASE}-${NAMESPACE}`);
        } else if (o.kind === 'Role' || o.kind === 'RoleBinding') {
          assert.ok(o.metadata.namespace, `${s}: ${name(o)} has a namespace`);
        } else {
          assert.equal(o.metadata.namespace, NAMESPACE, `${s}: ${name(o)}`);
        }
      }
    }
  });
});

describe('chart: workload and Service', () => {
  test('the default is a DaemonSet (no Deployment), rolling with a surge so a node keeps a gateway', () => {
    const objects = scenario('default');
    const ds = one(objects, 'DaemonSet');
    assert.equal(ofKind(objects, 'Deployment').length, 0);
    assert.deepEqual(get(ds, 'spec', 'updateStrategy'), { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    assert.equal(get(ds, 'spec', 'template', 'spec', 'hostNetwork'), undefined);
  });

  test('deployment mode: a Deployment with its replicas, a PodDisruptionBudget and a Cluster-wide Service', () => {
    const objects = scenario('deployment');
    const d = one(objects, 'Deployment');
    assert.equal(ofKind(objects, 'DaemonSet').length, 0);
    assert.equal(get(d, 'spec', 'replicas'), 3);
    assert.deepEqual(get(d, 'spec', 'strategy'), { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } });
    assert.equal(get(one(objects, 'PodDisruptionBudget'), 'spec', 'minAvailable'), 2);
    assert.equal(get(one(objects, 'Service'), 'spec', 'internalTrafficPolicy'), 'Cluster');
    assert.equal(get<unknown[]>(d, 'spec', 'template', 'spec', 'topologySpreadConstraints').length, 1);
  });

  test('the Service keeps agents on their own node: internalTrafficPolicy Local, and it selects the gateway pods', () => {
    const objects = scenario('default');
    const svc = one(objects, 'Service');
    assert.equal(get(svc, 'spec', 'internalTrafficPolicy'), 'Local');
    assert.equal(get(svc, 'spec', 'type'), 'ClusterIP');
    assert.deepEqual(
      get<{ name: string; port: number; targetPort: string }[]>(svc, 'spec', 'ports').map((p) => [p.name, p.port, p.targetPort]),
      [
        ['grpc', 50051, 'grpc'],
        ['metrics', 9090, 'metrics'],
        ['otlp-grpc', 4317, 'otlp-grpc'],
        ['otlp-http', 4318, 'otlp-http'],
        ['http', 8080, 'http'],
      ],
    );
    const selector = get<Record<string, string>>(svc, 'spec', 'selector');
    const podLabels = podMeta(objects).labels ?? {};
    for (const [k, v] of Object.entries(selector)) assert.equal(podLabels[k], v, `pod label ${k}`);
    assert.deepEqual(get(workload(objects), 'spec', 'selector', 'matchLabels'), selector);
    const ports = gateway(objects).ports.map((p) => [p.name, p.containerPort]);
    assert.deepEqual(ports, [
      ['grpc', 50051],
      ['metrics', 9090],
      ['otlp-grpc', 4317],
      ['otlp-http', 4318],
      ['http', 8080],
    ]);
  });

  test('otlp: each side off closes its container port and Service port, and tells the gateway "off"', async () => {
    const o = await template({ values: { otlp: { grpc: { enabled: false, port: 4317 }, http: { enabled: true, port: 14318 } } } });
    assert.deepEqual(
      gateway(o).ports.map((p) => p.name),
      ['grpc', 'metrics', 'otlp-http', 'http'],
    );
    assert.deepEqual(
      get<{ name: string; port: number }[]>(one(o, 'Service'), 'spec', 'ports').map((p) => [p.name, p.port]),
      [
        ['grpc', 50051],
        ['metrics', 9090],
        ['otlp-http', 14318],
        ['http', 8080],
      ],
    );
    assert.equal(envValue(o, 'POLKU_OTLP_GRPC_ADDR'), 'off');
    assert.equal(envValue(o, 'POLKU_OTLP_HTTP_ADDR'), '0.0.0.0:14318');
  });

  test('http: the front door\'s container port, Service port and settings; off closes both and tells the gateway "off"', async () => {
    const on = await template({ values: { http: { enabled: true, port: 18080, maxBodyBytes: 65536, requestTimeoutMs: 5000 } } });
    assert.deepEqual(
      gateway(on)
        .ports.filter((p) => p.name === 'http')
        .map((p) => p.containerPort),
      [18080],
    );
    assert.deepEqual(
      get<{ name: string; port: number; targetPort: string }[]>(one(on, 'Service'), 'spec', 'ports')
        .filter((p) => p.name === 'http')
        .map((p) => [p.port, p.targetPort]),
      [[18080, 'http']],
    );
    assert.equal(envValue(on, 'POLKU_HTTP_ADDR'), '0.0.0.0:18080');
    assert.equal(envValue(on, 'POLKU_HTTP_MAX_BODY_BYTES'), '65536');
    assert.equal(envValue(on, 'POLKU_HTTP_REQUEST_TIMEOUT_MS'), '5000');
    const off = await template({ values: { http: { enabled: false, port: 8080, maxBodyBytes: 4194304, requestTimeoutMs: 30000 } } });
    assert.ok(!gateway(off).ports.some((p) => p.name === 'http'));
    assert.ok(!get<{ name: string }[]>(one(off, 'Service'), 'spec', 'ports').some((p) => p.name === 'http'));
    assert.equal(envValue(off, 'POLKU_HTTP_ADDR'), 'off');
  });

  test('NODE_NAME and HOST_IP (and the pod name and namespace) come from the downward API', () => {
    const e = env(scenario('default'));
    assert.deepEqual(e.get('NODE_NAME')?.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
    assert.deepEqual(e.get('HOST_IP')?.valueFrom, { fieldRef: { fieldPath: 'status.hostIP' } });
    assert.deepEqual(e.get('POD_NAME')?.valueFrom, { fieldRef: { fieldPath: 'metadata.name' } });
    assert.deepEqual(e.get('POD_NAMESPACE')?.valueFrom, { fieldRef: { fieldPath: 'metadata.namespace' } });
  });

  test('the environment carries the gateway settings from values, defaults and overrides', async () => {
    const d = scenario('default');
    const expected: Record<string, string> = {
      POLKU_GRPC_ADDR: '0.0.0.0:50051',
      POLKU_METRICS_ADDR: '0.0.0.0:9090',
      POLKU_OTLP_GRPC_ADDR: '0.0.0.0:4317',
      POLKU_OTLP_HTTP_ADDR: '0.0.0.0:4318',
      POLKU_LOG_LEVEL: 'info',
      POLKU_BUFFER_CAPACITY: '10000',
      POLKU_BUFFER_MAX_BYTES: '33554432',
      POLKU_OVERFLOW_POLICY: 'reject',
      POLKU_BATCH_SIZE: '500',
      POLKU_FLUSH_INTERVAL_MS: '100',
      POLKU_EMIT_MAX_ATTEMPTS: '5',
      POLKU_SHUTDOWN_TIMEOUT_MS: '10000',
      POLKU_DISCOVERY: 'kubernetes',
      POLKU_DISCOVERY_NAMESPACES: '',
      POLKU_DISCOVERY_LABEL_SELECTOR: 'polku.io/plugin',
    };
    for (const [k, v] of Object.entries(expected)) assert.equal(envValue(d, k), v, k);
    // The intake limits are chart values whose defaults are the gateway's own.
    const gatewayDefaults = new Map<string, string>(ENV_VARIABLES.map(([k, v]) => [k, v]));
    for (const k of [
      'POLKU_MAX_MESSAGE_BYTES',
      'POLKU_MAX_BATCH_EVENTS',
      'POLKU_MAX_PAYLOAD_BYTES',
      'POLKU_MAX_METADATA_BYTES',
      'POLKU_MAX_EVENT_BYTES',
      'POLKU_MAX_JSON_DEPTH',
    ]) {
      assert.equal(envValue(d, k), gatewayDefaults.get(k), k);
    }
    const o = await template({
      values: {
        listenHost: '[::]',
        ports: { grpc: { containerPort: 7000 }, metrics: { containerPort: 7001 } },
        config: {
          logLevel: 'debug',
          buffer: { capacity: 250000, maxBytes: 134217728, overflowPolicy: 'block' },
          delivery: { batchSize: 1000, flushIntervalMs: 20, emitMaxAttempts: 9 },
          shutdownTimeoutMs: 25000,
        },
        terminationGracePeriodSeconds: 40,
        limits: { batchEvents: 5000, jsonDepth: 16 },
        extraEnv: [{ name: 'POLKU_METRICS_MAX_SOURCES', value: '20' }],
      },
    });
    const overridden: Record<string, string> = {
      POLKU_GRPC_ADDR: '[::]:7000',
      POLKU_METRICS_ADDR: '[::]:7001',
      POLKU_LOG_LEVEL: 'debug',
      POLKU_BUFFER_CAPACITY: '250000',
      POLKU_BUFFER_MAX_BYTES: '134217728',
      POLKU_OVERFLOW_POLICY: 'block',
      POLKU_BATCH_SIZE: '1000',
      POLKU_FLUSH_INTERVAL_MS: '20',
      POLKU_EMIT_MAX_ATTEMPTS: '9',
      POLKU_SHUTDOWN_TIMEOUT_MS: '25000',
      POLKU_MAX_BATCH_EVENTS: '5000',
      POLKU_MAX_JSON_DEPTH: '16',
      POLKU_METRICS_MAX_SOURCES: '20',
    };
    for (const [k, v] of Object.entries(overridden)) assert.equal(envValue(o, k), v, k);
    assert.equal(get(gateway(o).startupProbe, 'grpc', 'port'), 7000);
    assert.equal(podSpec(o).terminationGracePeriodSeconds, 40);
  });

  test('terminationGracePeriodSeconds outlasts POLKU_SHUTDOWN_TIMEOUT_MS, and a shorter one is refused', async () => {
    for (const [s, objects] of scenarios) {
      assert.ok(podSpec(objects).terminationGracePeriodSeconds * 1000 > Number(envValue(objects, 'POLKU_SHUTDOWN_TIMEOUT_MS')), s);
    }
    const r = await templateRaw({ set: ['terminationGracePeriodSeconds=10'] });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /terminationGracePeriodSeconds \(10 s\) must be larger than config\.shutdownTimeoutMs \(10000 ms\)/);
  });

  test('probes: startup on grpc.health.v1 (port 50051, service ""), readiness /readyz and liveness /healthz on the metrics port', () => {
    for (const [s, objects] of scenarios) {
      if (s === 'tls') continue; // HTTPS probes: see "chart: TLS"
      const c = gateway(objects);
      assert.deepEqual(c.startupProbe['grpc'], { port: 50051, service: '' }, s);
      assert.deepEqual(c.readinessProbe['httpGet'], { path: '/readyz', port: 'metrics' }, s);
      assert.deepEqual(c.livenessProbe['httpGet'], { path: '/healthz', port: 'metrics' }, s);
    }
    assert.ok(gateway(scenario('default')).ports.some((p) => p.name === 'metrics' && p.containerPort === 9090));
  });

  test('resources default to requests 100m/96Mi (idle with discovery, 63-72 MB) and limits 1 CPU/320Mi (full-speed peak at 51 %)', () => {
    assert.deepEqual(gateway(scenario('default')).resources, {
      requests: { cpu: '100m', memory: '96Mi' },
      limits: { cpu: '1', memory: '320Mi' },
    });
  });

  test('NODE_OPTIONS: --max-old-space-size is derived from limits.memory (half of it), or given; semi-space on request', async () => {
    assert.equal(envValue(scenario('default'), 'NODE_OPTIONS'), '--max-old-space-size=160');
    assert.equal(envValue(scenario('durable'), 'NODE_OPTIONS'), '--max-old-space-size=256');
    const cases: [Record<string, unknown>, string | undefined][] = [
      [{ resources: { limits: { memory: '1Gi' } } }, '--max-old-space-size=512'],
      [{ resources: { limits: { memory: '1.5G' } } }, '--max-old-space-size=715'],
      [{ resources: { limits: { memory: 536870912 } } }, '--max-old-space-size=256'],
      [{ resources: { limits: { memory: '1Gi' } }, nodeOptions: { heapPercent: 75 } }, '--max-old-space-size=768'],
      [{ nodeOptions: { maxSemiSpaceSizeMiB: 2 } }, '--max-old-space-size=160 --max-semi-space-size=2'],
      [{ nodeOptions: { maxOldSpaceSizeMiB: 300, extra: '--trace-warnings' } }, '--max-old-space-size=300 --trace-warnings'],
      [{ resources: { limits: null } }, undefined],
    ];
    const rendered = await Promise.all(cases.map(([values]) => template({ values })));
    rendered.forEach((o, i) => assert.equal(envValue(o, 'NODE_OPTIONS'), cases[i]![1], JSON.stringify(cases[i]![0])));
    const tooSmall = await templateRaw({ set: ['resources.limits.memory=40Mi'] });
    assert.notEqual(tooSmall.code, 0);
    assert.match(tooSmall.stderr, /20 MiB of heap, too little/);
  });

  test('securityContext: non-root uid 10001, read-only root, no privilege escalation, ALL capabilities dropped, seccomp RuntimeDefault', () => {
    for (const [s, objects] of scenarios) {
      const pod = podSpec(objects);
      assert.equal(pod.securityContext['runAsNonRoot'], true, s);
      assert.equal(pod.securityContext['runAsUser'], 10001, s);
      assert.deepEqual(pod.securityContext['seccompProfile'], { type: 'RuntimeDefault' }, s);
      const sc = gateway(objects).securityContext;
      assert.equal(sc['runAsNonRoot'], true, s);
      assert.equal(sc['runAsUser'], 10001, s);
      assert.equal(sc['readOnlyRootFilesystem'], true, s);
      assert.equal(sc['allowPrivilegeEscalation'], false, s);
      assert.equal(sc['privileged'], false, s);
      assert.deepEqual(sc['capabilities'], { drop: ['ALL'] }, s);
      assert.deepEqual(sc['seccompProfile'], { type: 'RuntimeDefault' }, s);
      // A read-only root still has a writable /tmp.
      assert.ok(
        gateway(objects).volumeMounts.some((m) => m.name === 'tmp' && m.mountPath === '/tmp'),
        s,
      );
      assert.ok(
        pod.volumes.some((v) => v.name === 'tmp' && v['emptyDir']),
        s,
      );
    }
  });

  test('tolerations, nodeSelector, affinity, priorityClassName and extra env reach the pod', async () => {
    const o = await template({
      values: {
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'infra', effect: 'NoSchedule' }],
        nodeSelector: { 'node-role.kubernetes.io/worker': '' },
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] }] }],
            },
          },
        },
        priorityClassName: 'system-node-critical',
        extraEnv: [{ name: 'WEBHOOK_TOKEN', valueFrom: { secretKeyRef: { name: 'hook', key: 'token' } } }],
        extraEnvFrom: [{ secretRef: { name: 'more' } }],
        podAnnotations: { 'example.com/team': 'platform' },
      },
    });
    const pod = podSpec(o);
    assert.deepEqual(pod['tolerations'], [{ key: 'dedicated', operator: 'Equal', value: 'infra', effect: 'NoSchedule' }]);
    // helm merges maps: the default kubernetes.io/os stays unless set to null.
    assert.deepEqual(pod['nodeSelector'], { 'kubernetes.io/os': 'linux', 'node-role.kubernetes.io/worker': '' });
    assert.equal(
      get(
        pod,
        'affinity',
        'nodeAffinity',
        'requiredDuringSchedulingIgnoredDuringExecution',
        'nodeSelectorTerms',
        0,
        'matchExpressions',
        0,
        'key',
      ),
      'kubernetes.io/arch',
    );
    assert.equal(pod['priorityClassName'], 'system-node-critical');
    assert.deepEqual(env(o).get('WEBHOOK_TOKEN')?.valueFrom, { secretKeyRef: { name: 'hook', key: 'token' } });
    assert.deepEqual(get(gateway(o), 'envFrom'), [{ secretRef: { name: 'more' } }]);
    assert.equal(podMeta(o).annotations?.['example.com/team'], 'platform');
    assert.deepEqual([...o.map(schemaProblems).flat(), ...unknownFieldProblems(o)], []);
  });
});

/**
 * What the Pod Security Standards' baseline and restricted levels refuse in a pod spec
 * (kubernetes.io/docs/concepts/security/pod-security-standards), as a list of violations.
 */
function podSecurityViolations(pod: PodSpec): { baseline: string[]; restricted: string[] } {
  const baseline: string[] = [];
  const restricted: string[] = [];
  for (const f of ['hostNetwork', 'hostPID', 'hostIPC'] as const) if (pod[f] === true) baseline.push(f);
  for (const v of pod.volumes) if (v['hostPath']) baseline.push(`hostPath volume ${v.name}`);
  const allowedVolumes = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];
  for (const v of pod.volumes) {
    const source = Object.keys(v).find((k) => k !== 'name');
    if (!source || !allowedVolumes.includes(source)) restricted.push(`volume ${v.name} of type ${source}`);
  }
  const podRunAsNonRoot = pod.securityContext['runAsNonRoot'] === true;
  const podSeccomp = get<string>(pod.securityContext, 'seccompProfile', 'type');
  for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
    const sc = c.securityContext ?? {};
    if (sc['privileged'] === true) baseline.push(`${c.name}: privileged`);
    for (const p of c.ports ?? []) if (p.hostPort) baseline.push(`${c.name}: hostPort ${p.hostPort}`);
    const baselineCaps = [
      'AUDIT_WRITE',
      'CHOWN',
      'DAC_OVERRIDE',
      'FOWNER',
      'FSETID',
      'KILL',
      'MKNOD',
      'NET_BIND_SERVICE',
      'SETFCAP',
      'SETGID',
      'SETPCAP',
      'SETUID',
      'SYS_CHROOT',
    ];
    const added = get<string[]>(sc, 'capabilities', 'add') ?? [];
    for (const cap of added) if (!baselineCaps.includes(cap)) baseline.push(`${c.name}: adds ${cap}`);
    for (const cap of added) if (cap !== 'NET_BIND_SERVICE') restricted.push(`${c.name}: adds ${cap}`);
    if (!(get<string[]>(sc, 'capabilities', 'drop') ?? []).includes('ALL')) restricted.push(`${c.name}: does not drop ALL`);
    if (sc['allowPrivilegeEscalation'] !== false) restricted.push(`${c.name}: allowPrivilegeEscalation not false`);
    const nonRoot = sc['runAsNonRoot'] ?? podRunAsNonRoot;
    if (nonRoot !== true) restricted.push(`${c.name}: runAsNonRoot not true`);
    if ((sc['runAsUser'] ?? pod.securityContext['runAsUser']) === 0) restricted.push(`${c.name}: runAsUser 0`);
    const seccomp = get<string>(sc, 'seccompProfile', 'type') ?? podSeccomp;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') restricted.push(`${c.name}: seccomp ${String(seccomp)}`);
  }
  return { baseline, restricted: [...baseline, ...restricted] };
}

describe('chart: Pod Security Standards', () => {
  test('the default pod (and every scenario without hostPort or durable) meets the restricted level', () => {
    for (const [s, objects] of scenarios) {
      if (s === 'hostport' || s === 'durable') continue;
      assert.deepEqual(podSecurityViolations(podSpec(objects)).restricted, [], s);
    }
    assert.ok(scenarios.size >= 8);
  });

  test("hostPort and durable's hostPath need the privileged level, as the README says", () => {
    assert.deepEqual(podSecurityViolations(podSpec(scenario('hostport'))).baseline, ['polku: hostPort 50051']);
    assert.deepEqual(podSecurityViolations(podSpec(scenario('durable'))).baseline, ['hostPath volume durable']);
    const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
    assert.match(readme, /privileged/);
  });
});

describe('chart: hostPort', () => {
  test('hostPort appears only in the hostport scenario', () => {
    for (const [s, objects] of scenarios) {
      const hostPorts = [...podSpec(objects).containers, ...(podSpec(objects).initContainers ?? [])]
        .flatMap((c) => c.ports ?? [])
        .filter((p) => p.hostPort !== undefined);
      if (s === 'hostport')
        assert.deepEqual(
          hostPorts.map((p) => [p.name, p.hostPort]),
          [['grpc', 50051]],
        );
      else assert.deepEqual(hostPorts, [], s);
      assert.equal(podSpec(objects)['hostNetwork'], undefined, s);
    }
  });

  test('with a hostPort the DaemonSet rolls without a surge, and a surge is refused with the reason', async () => {
    assert.deepEqual(get(one(scenario('hostport'), 'DaemonSet'), 'spec', 'updateStrategy', 'rollingUpdate'), {
      maxSurge: 0,
      maxUnavailable: 1,
    });
    const r = await templateRaw({ set: ['ports.grpc.hostPort=50051', 'updateStrategy.rollingUpdate.maxSurge=1'] });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /ports\.grpc\.hostPort forbids updateStrategy\.rollingUpdate\.maxSurge=1: two pods cannot bind one node port/);
    const d = await templateRaw({ set: ['mode=deployment', 'ports.grpc.hostPort=50051'] });
    assert.notEqual(d.code, 0);
    assert.match(d.stderr, /ports\.grpc\.hostPort is for daemonset mode/);
  });
});

describe('chart: RBAC for discovery', () => {
  const sortedRules = (rules: Rule[]) =>
    rules.map((r) => ({ apiGroups: [...r.apiGroups].sort(), resources: [...r.resources].sort(), verbs: [...r.verbs].sort() }));

  test('the ClusterRole grants exactly get/list/watch on services and endpointslices, and nothing else', () => {
    const objects = scenario('default');
    const role = one(objects, 'ClusterRole');
    assert.deepEqual(sortedRules(get<Rule[]>(role, 'rules')), [
      { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
    ]);
    for (const r of get<Record<string, unknown>[]>(role, 'rules')) {
      assert.deepEqual(Object.keys(r).sort(), ['apiGroups', 'resources', 'verbs'], 'no resourceNames, nonResourceURLs or wildcards');
    }
    const binding = one(objects, 'ClusterRoleBinding');
    assert.deepEqual(get(binding, 'roleRef'), { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
    assert.deepEqual(get(binding, 'subjects'), [{ kind: 'ServiceAccount', name: 'polku', namespace: NAMESPACE }]);
    assert.equal(one(objects, 'ServiceAccount').metadata.name, podSpec(objects).serviceAccountName);
    assert.equal(ofKind(objects, 'Role').length + ofKind(objects, 'RoleBinding').length, 0);
  });

  test('with endpointSlices off, the rules cover services only', async () => {
    const o = await template({ set: ['discovery.endpointSlices=false'] });
    assert.deepEqual(sortedRules(get<Rule[]>(one(o, 'ClusterRole'), 'rules')), [
      { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
    ]);
  });

  test('listed namespaces get a Role and RoleBinding each, no ClusterRole, and POLKU_DISCOVERY_NAMESPACES lists them', () => {
    const objects = scenario('namespaced-rbac');
    assert.equal(ofKind(objects, 'ClusterRole').length + ofKind(objects, 'ClusterRoleBinding').length, 0);
    const roles = ofKind(objects, 'Role');
    const bindings = ofKind(objects, 'RoleBinding');
    assert.deepEqual(
      roles.map((r) => r.metadata.namespace),
      ['plugins', 'team-a'],
    );
    assert.deepEqual(
      bindings.map((b) => b.metadata.namespace),
      ['plugins', 'team-a'],
    );
    for (const r of roles) {
      assert.deepEqual(sortedRules(get<Rule[]>(r, 'rules')), [
        { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
      ]);
    }
    for (const b of bindings) {
      assert.deepEqual(get(b, 'roleRef'), { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'polku' });
      assert.deepEqual(get(b, 'subjects'), [{ kind: 'ServiceAccount', name: 'polku', namespace: NAMESPACE }]);
    }
    assert.equal(envValue(objects, 'POLKU_DISCOVERY_NAMESPACES'), 'plugins,team-a');
    assert.equal(envValue(objects, 'POLKU_DISCOVERY_LABEL_SELECTOR'), 'polku.io/plugin in (emitter,ingestor)');
  });

  test('rbac.create=false renders no RBAC; discovery off renders no RBAC, no discovery env and mounts no token', async () => {
    const [noRbac, noDiscovery] = await Promise.all([
      template({ set: ['rbac.create=false'] }),
      template({ set: ['discovery.enabled=false'] }),
    ]);
    const rbacKinds = ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];
    for (const o of [noRbac, noDiscovery]) assert.deepEqual(o.filter((x) => rbacKinds.includes(x.kind)).map(name), []);
    assert.equal(envValue(noRbac, 'POLKU_DISCOVERY'), 'kubernetes');
    assert.equal(podSpec(noRbac).automountServiceAccountToken, true);
    assert.equal(env(noDiscovery).has('POLKU_DISCOVERY'), false);
    assert.equal(env(noDiscovery).has('POLKU_DISCOVERY_NAMESPACES'), false);
    assert.equal(podSpec(noDiscovery).automountServiceAccountToken, false);
    // The ServiceAccount itself never hands out a token: the pod asks for one only for discovery.
    assert.equal(one(noDiscovery, 'ServiceAccount')['automountServiceAccountToken'], false);
  });
});

describe('chart: registry token', () => {
  test('from a value: a Secret holding it, read into POLKU_REGISTRY_TOKEN', () => {
    const objects = scenario('registry-token');
    const secret = one(objects, 'Secret');
    assert.equal(Buffer.from(get<string>(secret, 'data', 'token'), 'base64').toString(), 'not-a-real-token-change-me');
    assert.deepEqual(env(objects).get('POLKU_REGISTRY_TOKEN')?.valueFrom, { secretKeyRef: { name: secret.metadata.name, key: 'token' } });
  });

  test('from an existing Secret: no Secret rendered, the env names it and its key', () => {
    const objects = scenario('existing-secret');
    assert.equal(ofKind(objects, 'Secret').length, 0);
    assert.deepEqual(env(objects).get('POLKU_REGISTRY_TOKEN')?.valueFrom, {
      secretKeyRef: { name: 'polku-registry', key: 'registry-token' },
    });
  });

  test('the registry turned on generates a token: a Secret of 48 random characters, kept on uninstall, read into POLKU_REGISTRY_TOKEN', async () => {
    const objects = await template({ set: ['registry.enabled=true'] });
    const secret = one(objects, 'Secret');
    assert.match(Buffer.from(get<string>(secret, 'data', 'token'), 'base64').toString(), /^[A-Za-z0-9]{48}$/);
    assert.equal(get<string>(secret, 'metadata', 'annotations', 'helm.sh/resource-policy'), 'keep');
    assert.deepEqual(env(objects).get('POLKU_REGISTRY_TOKEN')?.valueFrom, { secretKeyRef: { name: secret.metadata.name, key: 'token' } });
  });

  test('no token without the registry (the default); an enabled registry with no token at all, or both token sources, is refused', async () => {
    const off = await templateRaw({});
    assert.equal(off.code, 0);
    assert.doesNotMatch(off.stdout, /kind: Secret/);
    assert.doesNotMatch(off.stdout, /POLKU_REGISTRY_TOKEN/);
    const open = await templateRaw({ set: ['registry.enabled=true', 'registryToken.generate=false'] });
    assert.notEqual(open.code, 0);
    assert.match(open.stderr, /registry.enabled with no registry token/);
    const r = await templateRaw({ set: ['registryToken.value=a', 'registryToken.existingSecret=b'] });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /registryToken: set value or existingSecret, not both/);
  });
});

describe('chart: plugin registry', () => {
  const REGISTRY_ENV = [
    'POLKU_REGISTRY',
    'POLKU_REGISTRY_HEARTBEAT_MS',
    'POLKU_REGISTRY_MISSED_BEATS',
    'POLKU_REGISTRY_HEALTH_INTERVAL_MS',
    'POLKU_REGISTRY_MAX_PLUGINS',
    'POLKU_REGISTRY_ALLOWLIST',
    'POLKU_REGISTRY_REGISTER_RATE',
    'POLKU_REGISTRY_REGISTER_BURST',
  ];

  test("by default the registry is off, and every other POLKU_REGISTRY_* setting is passed, each equal to the gateway's own default", () => {
    const defaults = new Map<string, string>(ENV_VARIABLES.map(([k, v]) => [k, v]));
    assert.equal(envValue(scenario('default'), 'POLKU_REGISTRY'), 'off');
    for (const k of REGISTRY_ENV.slice(1)) assert.equal(envValue(scenario('default'), k), defaults.get(k), k);
    assert.equal(envValue(scenario('default'), 'POLKU_REGISTRY_ALLOWLIST'), DEFAULT_ALLOWLIST.join(','));
  });

  test("the values reach the env, and the allowlist may name the node's own IP through $(HOST_IP), set before it", () => {
    const objects = scenario('registry');
    const expected: Record<string, string> = {
      POLKU_REGISTRY: 'on',
      POLKU_REGISTRY_HEARTBEAT_MS: '2000',
      POLKU_REGISTRY_MISSED_BEATS: '2',
      POLKU_REGISTRY_HEALTH_INTERVAL_MS: '3000',
      POLKU_REGISTRY_MAX_PLUGINS: '16',
      POLKU_REGISTRY_ALLOWLIST: '10.244.0.0/16,*.plugins.svc.cluster.local,$(HOST_IP)/32',
      POLKU_REGISTRY_REGISTER_RATE: '2',
      POLKU_REGISTRY_REGISTER_BURST: '4',
    };
    for (const [k, v] of Object.entries(expected)) assert.equal(envValue(objects, k), v, k);
    // Kubernetes expands $(VAR) only from variables defined earlier in the list.
    const names = gateway(objects).env.map((e) => e.name);
    assert.ok(names.indexOf('HOST_IP') < names.indexOf('POLKU_REGISTRY_ALLOWLIST'));
    assert.deepEqual(env(objects).get('POLKU_REGISTRY_TOKEN')?.valueFrom, { secretKeyRef: { name: 'polku-registry', key: 'token' } });
  });

  test("registry.enabled=false turns the service off; a null allowlist leaves the gateway's default", async () => {
    const [off, nullList] = await Promise.all([
      template({ set: ['registry.enabled=false'] }),
      template({ set: ['registry.allowlist=null'] }),
    ]);
    assert.equal(envValue(off, 'POLKU_REGISTRY'), 'off');
    assert.equal(env(nullList).has('POLKU_REGISTRY_ALLOWLIST'), false);
    assert.equal(envValue(nullList, 'POLKU_REGISTRY_MAX_PLUGINS'), '64');
  });
});

describe('chart: pipeline module', () => {
  const moduleOf = (values: string) =>
    (parseYaml(readFileSync(join(CHART, 'ci', values), 'utf8')) as { pipeline: { module: string } }).pipeline.module;

  test('the ConfigMap holds the module exactly, mounted at /etc/polku/polku.config.ts and named by POLKU_CONFIG', () => {
    const objects = scenario('pipeline-module');
    const cm = one(objects, 'ConfigMap');
    assert.equal(get(cm, 'data', 'polku.config.ts'), moduleOf('pipeline-module-values.yaml'));
    assert.equal(envValue(objects, 'POLKU_CONFIG'), '/etc/polku/polku.config.ts');
    assert.deepEqual(
      gateway(objects).volumeMounts.find((m) => m.name === 'pipeline'),
      { name: 'pipeline', mountPath: '/etc/polku', readOnly: true },
    );
    const volume = podSpec(objects).volumes.find((v) => v.name === 'pipeline');
    assert.deepEqual(volume?.['configMap'], { name: cm.metadata.name, items: [{ key: 'polku.config.ts', path: 'polku.config.ts' }] });
  });

  test('every character of a module survives: indentation, tabs, trailing spaces, template braces, unicode', async () => {
    const tricky = [
      '  // starts indented',
      "import { hub } from 'polku';\t// a tab",
      'const s = `{{ not a helm template }}`;   ',
      'const t = \'äö ✓ \\u00e9 "quotes" # not a comment\';',
      '',
      '',
      'export default hub();',
      '',
    ].join('\n');
    for (const module of [tricky, 'export default hub();', 'x\r\ny\n\n\n']) {
      const o = await template({ values: { pipeline: { module } } });
      assert.equal(get(one(o, 'ConfigMap'), 'data', 'polku.config.ts'), module);
    }
  });

  test('--set-file pipeline.module=polku.config.ts ships a file as it is', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-module-'));
    const file = join(dir, 'polku.config.ts');
    const module = "import { hub } from 'polku';\n\nexport default hub();\n";
    writeFileSync(file, module);
    try {
      const o = await template({ setFile: [`pipeline.module=${file}`] });
      assert.equal(get(one(o, 'ConfigMap'), 'data', 'polku.config.ts'), module);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the checksum annotation is the module's sha256, and changes when the module changes (only then)", async () => {
    const a = 'export default hub();\n';
    const b = 'export default hub().buffer({ capacity: 5 });\n';
    const [ra, ra2, rb] = await Promise.all([
      template({ values: { pipeline: { module: a } } }),
      template({ values: { pipeline: { module: a }, config: { logLevel: 'debug' } } }),
      template({ values: { pipeline: { module: b } } }),
    ]);
    const checksum = (o: K8sObject[]) => podMeta(o).annotations?.['checksum/pipeline'];
    assert.equal(checksum(ra), sha256(a));
    assert.equal(checksum(ra2), checksum(ra));
    assert.equal(checksum(rb), sha256(b));
    assert.notEqual(checksum(rb), checksum(ra));
    assert.equal(checksum(scenario('pipeline-module')), sha256(moduleOf('pipeline-module-values.yaml')));
  });

  test('no module: no ConfigMap, no POLKU_CONFIG, no checksum (the embedded default pipeline)', () => {
    const objects = scenario('default');
    assert.equal(ofKind(objects, 'ConfigMap').length, 0);
    assert.equal(env(objects).has('POLKU_CONFIG'), false);
    assert.equal(podMeta(objects).annotations, undefined);
    assert.equal(
      gateway(objects).volumeMounts.some((m) => m.mountPath === '/etc/polku'),
      false,
    );
  });

  test('an existing ConfigMap is mounted instead, and setting both is refused', async () => {
    const o = await template({ set: ['pipeline.existingConfigMap=my-pipeline'] });
    assert.equal(ofKind(o, 'ConfigMap').length, 0);
    assert.equal(
      get(
        podSpec(o).volumes.find((v) => v.name === 'pipeline'),
        'configMap',
        'name',
      ),
      'my-pipeline',
    );
    assert.equal(envValue(o, 'POLKU_CONFIG'), '/etc/polku/polku.config.ts');
    const r = await templateRaw({ set: ['pipeline.existingConfigMap=my-pipeline', 'pipeline.module=x'] });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /pipeline: set module or existingConfigMap, not both/);
  });
});

describe('chart: durable mode', () => {
  test('the durable volume, mount, init container and env appear only when durable.enabled', () => {
    for (const [s, objects] of scenarios) {
      const pod = podSpec(objects);
      const on = s === 'durable';
      assert.equal(
        pod.volumes.some((v) => v.name === 'durable'),
        on,
        s,
      );
      assert.equal(
        gateway(objects).volumeMounts.some((m) => m.mountPath === '/var/lib/polku'),
        on,
        s,
      );
      assert.equal(env(objects).has('POLKU_DURABLE'), on, s);
      assert.equal(env(objects).has('POLKU_DATA_DIR'), on, s);
      assert.equal((pod.initContainers ?? []).length, on ? 1 : 0, s);
    }
  });

  test('durable: hostPath /var/lib/polku mounted at /var/lib/polku, POLKU_DURABLE=true, POLKU_DATA_DIR, no surge', () => {
    const objects = scenario('durable');
    const pod = podSpec(objects);
    assert.deepEqual(
      pod.volumes.find((v) => v.name === 'durable'),
      { name: 'durable', hostPath: { path: '/var/lib/polku', type: 'DirectoryOrCreate' } },
    );
    assert.deepEqual(
      gateway(objects).volumeMounts.find((m) => m.name === 'durable'),
      { name: 'durable', mountPath: '/var/lib/polku' },
    );
    assert.equal(envValue(objects, 'POLKU_DURABLE'), 'true');
    assert.equal(envValue(objects, 'POLKU_DATA_DIR'), '/var/lib/polku');
    assert.equal(envValue(objects, 'POLKU_DURABLE_MAX_BYTES'), '4294967296');
    assert.equal(envValue(objects, 'POLKU_IDEMPOTENCY_MAX_KEYS'), '200000');
    assert.deepEqual(get(one(objects, 'DaemonSet'), 'spec', 'updateStrategy', 'rollingUpdate'), { maxSurge: 0, maxUnavailable: 1 });
    // The init container only chowns the directory, as root with CHOWN and FOWNER and nothing else.
    const init = pod.initContainers![0]!;
    assert.deepEqual(init.command, ['sh', '-c', 'chown 10001:10001 /var/lib/polku && chmod 0750 /var/lib/polku']);
    assert.deepEqual(init.securityContext['capabilities'], { drop: ['ALL'], add: ['CHOWN', 'FOWNER'] });
    assert.equal(init.securityContext['allowPrivilegeEscalation'], false);
    assert.equal(init.securityContext['readOnlyRootFilesystem'], true);
  });

  test('durable with a claim in deployment mode: the PVC, and Recreate so two pods never share the log', async () => {
    const o = await template({ set: ['mode=deployment', 'durable.enabled=true', 'durable.existingClaim=polku-log'] });
    assert.deepEqual(
      podSpec(o).volumes.find((v) => v.name === 'durable'),
      { name: 'durable', persistentVolumeClaim: { claimName: 'polku-log' } },
    );
    assert.deepEqual(get(one(o, 'Deployment'), 'spec', 'strategy'), { type: 'Recreate' });
    assert.equal(podSpec(o).initContainers, undefined);
    const surge = await templateRaw({ set: ['durable.enabled=true', 'updateStrategy.rollingUpdate.maxSurge=1'] });
    assert.notEqual(surge.code, 0);
    assert.match(
      surge.stderr,
      /durable\.enabled forbids updateStrategy\.rollingUpdate\.maxSurge=1: two gateways would share one durable log/,
    );
  });
});

describe('chart: monitoring', () => {
  test('no ServiceMonitor or PodMonitor unless asked for', () => {
    for (const [s, objects] of scenarios) {
      assert.equal(ofKind(objects, 'ServiceMonitor').length, s === 'servicemonitor' ? 1 : 0, s);
      assert.equal(ofKind(objects, 'PodMonitor').length, s === 'podmonitor' ? 1 : 0, s);
    }
  });

  test('the ServiceMonitor selects the gateway Service and scrapes its metrics port, labelled by node', () => {
    const objects = scenario('servicemonitor');
    const sm = one(objects, 'ServiceMonitor');
    assert.equal(sm.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(sm.metadata.labels?.['release'], 'kube-prometheus-stack');
    const svc = one(objects, 'Service');
    for (const [k, v] of Object.entries(get<Record<string, string>>(sm, 'spec', 'selector', 'matchLabels')))
      assert.equal(svc.metadata.labels?.[k], v, k);
    assert.deepEqual(get(sm, 'spec', 'namespaceSelector'), { matchNames: [NAMESPACE] });
    const ep = get<Record<string, unknown>>(sm, 'spec', 'endpoints', 0);
    assert.equal(ep['port'], 'metrics');
    assert.ok(get<{ name: string }[]>(svc, 'spec', 'ports').some((p) => p.name === 'metrics'));
    assert.equal(ep['path'], '/metrics');
    assert.equal(ep['interval'], '15s');
    assert.equal(ep['scrapeTimeout'], '10s');
    assert.deepEqual(ep['relabelings'], [{ sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' }]);
    assert.equal(get(ep, 'metricRelabelings', 0, 'action'), 'drop');
  });

  test('the PodMonitor selects the gateway pods and scrapes their metrics port', () => {
    const objects = scenario('podmonitor');
    const pm = one(objects, 'PodMonitor');
    const podLabels = podMeta(objects).labels ?? {};
    for (const [k, v] of Object.entries(get<Record<string, string>>(pm, 'spec', 'selector', 'matchLabels')))
      assert.equal(podLabels[k], v, k);
    assert.equal(get(pm, 'spec', 'podMetricsEndpoints', 0, 'port'), 'metrics');
    assert.equal(get(pm, 'spec', 'podMetricsEndpoints', 0, 'path'), '/metrics');
  });

  test('the hand-made CRD check refuses a malformed monitor', () => {
    const sm = structuredClone(one(scenario('servicemonitor'), 'ServiceMonitor'));
    const ep = get<Record<string, unknown>>(sm, 'spec', 'endpoints', 0);
    ep['interval'] = 'often';
    ep['prot'] = 'metrics';
    const problems = schemaProblems(sm);
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems.join('\n'), /interval must be a Prometheus duration/);
    assert.match(problems.join('\n'), /unknown field prot/);
  });
});

describe('chart: NOTES.txt', () => {
  // helm renders NOTES.txt only on install, which needs a cluster: render the same text, with the
  // same helpers and values, from a copy of the chart where it is a template of a ConfigMap.
  let notesChart = '';
  const dir = mkdtempSync(join(tmpdir(), 'polku-notes-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  before(() => {
    notesChart = join(dir, 'polku');
    cpSync(CHART, notesChart, { recursive: true });
    const notes = readFileSync(join(notesChart, 'templates', 'NOTES.txt'), 'utf8');
    writeFileSync(join(notesChart, 'templates', '_notes.tpl'), `{{- define "polku.test.notes" -}}\n${notes}\n{{- end }}\n`);
    renameSync(join(notesChart, 'templates', 'NOTES.txt'), join(notesChart, 'notes.txt.orig'));
    writeFileSync(
      join(notesChart, 'templates', 'notes-as-configmap.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "polku.test.notes" . | toJson }}\n',
    );
  });
  const notes = async (set: string[]) => {
    const r = await helm(['template', RELEASE, notesChart, '--namespace', NAMESPACE, ...set.flatMap((s) => ['--set', s])]);
    assert.equal(r.code, 0, r.stderr);
    const cm = parseManifests(r.stdout).find((o) => o.metadata.name === 'notes');
    return get<string>(cm, 'data', 'notes');
  };

  test('NOTES say plainly that the default image must be built and pushed (or kind-loaded), with the commands', async () => {
    const appVersion = /^appVersion: *"?([^"\n]+)"?$/m.exec(readFileSync(join(CHART, 'Chart.yaml'), 'utf8'))![1]!;
    const text = await notes([]);
    assert.match(text, new RegExp(`THE IMAGE polku:${appVersion.replace(/\./g, '\\.')} IS NOT PUBLISHED`));
    assert.ok(text.includes(`docker push registry.example.com/platform/polku:${appVersion}`), text);
    assert.ok(text.includes(`kind load docker-image polku:${appVersion}`), text);
    assert.ok(text.includes('--set image.repository=registry.example.com/platform/polku'), text);
    const own = await notes(['image.repository=registry.example.com/platform/polku', 'image.tag=1.2.3']);
    assert.doesNotMatch(own, /NOT PUBLISHED|kind load/);
  });

  test('NOTES tell agents the node-local Service address and port', async () => {
    const text = await notes([]);
    assert.match(text, /polku\.polku\.svc:50051/);
    assert.match(text, /internalTrafficPolicy: Local/);
    assert.match(text, /grpcurl/);
    assert.doesNotMatch(text, /HOST_IP/);
  });

  test('NOTES say where the generated registry token is while registration is on and no token was given', async () => {
    assert.match(
      await notes(['registry.enabled=true']),
      /Plugins register with the token the chart generated, in Secret polku-registry-token/,
    );
    assert.doesNotMatch(await notes(['registry.enabled=true', 'registryToken.existingSecret=polku-registry']), /token the chart generated/);
    assert.doesNotMatch(await notes([]), /token the chart generated/);
  });

  test('with a hostPort, NOTES give $(HOST_IP):port and the downward API snippet', async () => {
    const text = await notes(['ports.grpc.hostPort=50051']);
    assert.match(text, /\$\(HOST_IP\):50051/);
    assert.match(text, /fieldPath: status\.hostIP/);
  });
});

describe('chart: TLS', () => {
  test('off by default: no TLS env, no tls volume, plaintext probes and scrape', () => {
    const objects = scenario('default');
    for (const key of env(objects).keys()) assert.doesNotMatch(key, /TLS/);
    assert.equal(
      podSpec(objects).volumes.some((v) => v.name === 'tls'),
      false,
    );
    assert.equal(get<Array<{ scheme: string }>>(one(scenario('servicemonitor'), 'ServiceMonitor'), 'spec', 'endpoints')[0]!.scheme, 'http');
  });

  test('on: the Secret mounted read-only, POLKU_TLS_* and POLKU_PLUGIN_TLS_* name its files, probes and scrape use HTTPS', () => {
    const objects = scenario('tls');
    const dir = '/var/run/polku/tls';
    assert.deepEqual(
      podSpec(objects).volumes.find((v) => v.name === 'tls'),
      { name: 'tls', secret: { secretName: 'polku-tls' } },
    );
    assert.deepEqual(
      gateway(objects).volumeMounts.find((m) => m.name === 'tls'),
      { name: 'tls', mountPath: dir, readOnly: true },
    );
    assert.equal(envValue(objects, 'POLKU_TLS_CERT_FILE'), `${dir}/tls.crt`);
    assert.equal(envValue(objects, 'POLKU_TLS_KEY_FILE'), `${dir}/tls.key`);
    assert.equal(envValue(objects, 'POLKU_TLS_CLIENT_CA_FILE'), `${dir}/ca.crt`);
    assert.equal(envValue(objects, 'POLKU_TLS_RELOAD_INTERVAL_MS'), '2000');
    assert.equal(envValue(objects, 'POLKU_PLUGIN_TLS_CA_FILE'), `${dir}/ca.crt`);
    assert.equal(envValue(objects, 'POLKU_PLUGIN_TLS_CERT_FILE'), `${dir}/tls.crt`);
    assert.equal(envValue(objects, 'POLKU_PLUGIN_TLS_KEY_FILE'), `${dir}/tls.key`);
    const c = gateway(objects);
    // The kubelet's gRPC probe speaks no TLS: startup is a TCP check of the gRPC port.
    assert.deepEqual(c.startupProbe['tcpSocket'], { port: 'grpc' });
    assert.equal(c.startupProbe['grpc'], undefined);
    assert.deepEqual(c.readinessProbe['httpGet'], { path: '/readyz', port: 'metrics', scheme: 'HTTPS' });
    assert.deepEqual(c.livenessProbe['httpGet'], { path: '/healthz', port: 'metrics', scheme: 'HTTPS' });
  });

  test('on, with a ServiceMonitor or PodMonitor: they scrape over https with the given tlsConfig', async () => {
    for (const kind of ['ServiceMonitor', 'PodMonitor']) {
      const key = kind === 'ServiceMonitor' ? 'serviceMonitor' : 'podMonitor';
      const objects = await template({ valuesFiles: ['ci/tls-values.yaml'], set: [`${key}.enabled=true`] });
      const endpoints = get<Array<Record<string, unknown>>>(
        one(objects, kind),
        'spec',
        kind === 'ServiceMonitor' ? 'endpoints' : 'podMetricsEndpoints',
      );
      const endpoint = endpoints[0]!;
      assert.equal(endpoint['scheme'], 'https', kind);
      assert.deepEqual(endpoint['tlsConfig'], { serverName: 'polku', ca: { secret: { name: 'polku-tls', key: 'ca.crt' } } });
    }
  });

  test('without a Secret name, or clientCA without TLS, the render is refused with the reason', async () => {
    const noSecret = await templateRaw({ set: ['tls.enabled=true'] });
    assert.notEqual(noSecret.code, 0);
    assert.match(noSecret.stderr, /tls.enabled needs tls.secretName/);
    const caOnly = await templateRaw({ set: ['tls.clientCA=true'] });
    assert.notEqual(caOnly.code, 0);
    assert.match(caOnly.stderr, /tls.clientCA and tls.plugins need tls.enabled/);
  });
});
