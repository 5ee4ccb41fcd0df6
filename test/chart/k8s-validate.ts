// Validates rendered objects against the Kubernetes schemas, as an API server would, without one:
//  - kubernetes-models' JSON-schema validators (types, required fields, enums, formats);
//  - unknown fields, which those schemas allow but `kubectl --validate=strict` refuses: the objects
//    are type-checked as object literals against kubernetes-models' TypeScript interfaces, so an
//    excess property (a typo such as `internalTraficPolicy`) is an error;
//  - ServiceMonitor and PodMonitor (Prometheus Operator CRDs, not in kubernetes-models) by hand.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { K8sObject } from './helm.js';

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: never) => Validatable;

/** apiVersion/kind → the kubernetes-models class and the module its TypeScript interface is in. */
const MODELS: Record<string, { model: ModelClass; module: string; iface: string }> = {
  'v1/ConfigMap': { model: ConfigMap, module: 'kubernetes-models/v1/ConfigMap', iface: 'IConfigMap' },
  'v1/Namespace': { model: Namespace, module: 'kubernetes-models/v1/Namespace', iface: 'INamespace' },
  'v1/Secret': { model: Secret, module: 'kubernetes-models/v1/Secret', iface: 'ISecret' },
  'v1/Service': { model: Service, module: 'kubernetes-models/v1/Service', iface: 'IService' },
  'v1/ServiceAccount': { model: ServiceAccount, module: 'kubernetes-models/v1/ServiceAccount', iface: 'IServiceAccount' },
  'apps/v1/DaemonSet': { model: DaemonSet, module: 'kubernetes-models/apps/v1/DaemonSet', iface: 'IDaemonSet' },
  'apps/v1/Deployment': { model: Deployment, module: 'kubernetes-models/apps/v1/Deployment', iface: 'IDeployment' },
  'rbac.authorization.k8s.io/v1/ClusterRole': {
    model: ClusterRole,
    module: 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole',
    iface: 'IClusterRole',
  },
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': {
    model: ClusterRoleBinding,
    module: 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding',
    iface: 'IClusterRoleBinding',
  },
  'rbac.authorization.k8s.io/v1/Role': { model: Role, module: 'kubernetes-models/rbac.authorization.k8s.io/v1/Role', iface: 'IRole' },
  'rbac.authorization.k8s.io/v1/RoleBinding': {
    model: RoleBinding,
    module: 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding',
    iface: 'IRoleBinding',
  },
  'policy/v1/PodDisruptionBudget': {
    model: PodDisruptionBudget,
    module: 'kubernetes-models/policy/v1/PodDisruptionBudget',
    iface: 'IPodDisruptionBudget',
  },
};

const CRDS = new Set([
  'monitoring.coreos.com/v1/ServiceMonitor',
  'monitoring.coreos.com/v1/PodMonitor',
  'monitoring.coreos.com/v1/PrometheusRule',
]);

const typeKey = (o: K8sObject) => `${o.apiVersion}/${o.kind}`;

/** Describes an object in messages: Kind/name. */
export const describe = (o: K8sObject) => `${o.kind}/${o.metadata?.name ?? '?'}`;

/** The kinds this module can validate; anything else is a failure, never a silent pass. */
export function isKnownKind(o: K8sObject): boolean {
  return typeKey(o) in MODELS || CRDS.has(typeKey(o));
}

/**
 * Validates one object against its Kubernetes schema (or, for the monitoring CRDs, their shape).
 * Returns the problems; empty when valid.
 */
export function schemaProblems(o: K8sObject): string[] {
  const key = typeKey(o);
  if (key === 'monitoring.coreos.com/v1/PrometheusRule') return ruleProblems(o);
  if (CRDS.has(key)) return monitorProblems(o);
  const entry = MODELS[key];
  if (!entry) return [`${describe(o)}: no schema for ${key}`];
  try {
    new entry.model(o as never).validate();
    return [];
  } catch (err) {
    return [`${describe(o)}: ${(err as Error).message}`];
  }
}

/**
 * Unknown fields in any of `objects`, found by type-checking each as an object literal of its
 * kubernetes-models interface (excess property checks). One TypeScript program for all of them.
 */
export function unknownFieldProblems(objects: K8sObject[]): string[] {
  const typed = objects.filter((o) => typeKey(o) in MODELS);
  const imports = new Map<string, string>();
  const lines: string[] = [];
  typed.forEach((o, i) => {
    const m = MODELS[typeKey(o)]!;
    imports.set(m.iface, m.module);
    lines.push(`export const o${i}: ${m.iface} = ${JSON.stringify(o)};`);
  });
  const source = [...[...imports].map(([iface, module]) => `import type { ${iface} } from '${module}';`), ...lines].join('\n');
  // A virtual file beside this one, so that kubernetes-models resolves as it does for this module.
  const file = join(dirname(fileURLToPath(import.meta.url)), '__rendered_objects__.ts');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
    lib: ['lib.es2022.d.ts'],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, languageVersion, ...rest) =>
    name === file ? ts.createSourceFile(name, source, languageVersion, true) : getSourceFile(name, languageVersion, ...rest);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const problems: string[] = [];
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    let where = '';
    if (d.file && d.file.fileName === file && d.start !== undefined) {
      const line = d.file.getLineAndCharacterOfPosition(d.start).line - imports.size;
      const o = typed[line];
      if (o) where = `${describe(o)}: `;
    }
    problems.push(`${where}${text}`);
  }
  return problems;
}

// ---- ServiceMonitor / PodMonitor / PrometheusRule (monitoring.coreos.com/v1), checked by hand ----
// (The PromQL inside a PrometheusRule is checked by promtool in test/chart/monitoring.test.ts.)

const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const PROM_DURATION = /^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$/;
const RELABEL_ACTIONS = new Set(
  ['replace', 'keep', 'drop', 'hashmod', 'labelmap', 'labeldrop', 'labelkeep', 'lowercase', 'uppercase', 'keepequal', 'dropequal'].flatMap(
    (a) => [a, a[0]!.toUpperCase() + a.slice(1)],
  ),
);
const RELABEL_FIELDS = new Set(['sourceLabels', 'separator', 'targetLabel', 'regex', 'modulus', 'replacement', 'action']);
const ENDPOINT_FIELDS = new Set([
  'port',
  'targetPort',
  'path',
  'scheme',
  'params',
  'interval',
  'scrapeTimeout',
  'honorLabels',
  'honorTimestamps',
  'relabelings',
  'metricRelabelings',
  'tlsConfig',
  'bearerTokenSecret',
  'authorization',
  'basicAuth',
  'oauth2',
  'followRedirects',
  'enableHttp2',
  'filterRunning',
  'proxyUrl',
  'trackTimestampsStaleness',
]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringMap = (v: unknown) => isObject(v) && Object.values(v).every((x) => typeof x === 'string');

function relabelProblems(where: string, list: unknown): string[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) return [`${where} must be a list`];
  const p: string[] = [];
  list.forEach((r, i) => {
    const at = `${where}[${i}]`;
    if (!isObject(r)) {
      p.push(`${at} must be an object`);
      return;
    }
    for (const k of Object.keys(r)) if (!RELABEL_FIELDS.has(k)) p.push(`${at}: unknown field ${k}`);
    if (r['sourceLabels'] !== undefined && !(Array.isArray(r['sourceLabels']) && r['sourceLabels'].every((s) => typeof s === 'string'))) {
      p.push(`${at}.sourceLabels must be a list of strings`);
    }
    for (const k of ['separator', 'targetLabel', 'regex', 'replacement'] as const) {
      if (r[k] !== undefined && typeof r[k] !== 'string') p.push(`${at}.${k} must be a string`);
    }
    if (r['action'] !== undefined && !RELABEL_ACTIONS.has(String(r['action'])))
      p.push(`${at}.action ${String(r['action'])} is not a relabel action`);
  });
  return p;
}

function monitorProblems(o: K8sObject): string[] {
  const p: string[] = [];
  const at = describe(o);
  const allowedTop = new Set(['apiVersion', 'kind', 'metadata', 'spec']);
  for (const k of Object.keys(o)) if (!allowedTop.has(k)) p.push(`${at}: unknown field ${k}`);
  if (!o.metadata || typeof o.metadata.name !== 'string' || !DNS_1123_SUBDOMAIN.test(o.metadata.name))
    p.push(`${at}: metadata.name must be a DNS subdomain`);
  if (o.metadata?.labels !== undefined && !isStringMap(o.metadata.labels)) p.push(`${at}: metadata.labels must map strings to strings`);
  const spec = o['spec'];
  if (!isObject(spec)) return [...p, `${at}: spec is required`];
  const endpointsKey = o.kind === 'ServiceMonitor' ? 'endpoints' : 'podMetricsEndpoints';
  const allowedSpec = new Set([
    'selector',
    'namespaceSelector',
    endpointsKey,
    'jobLabel',
    'podTargetLabels',
    'targetLabels',
    'sampleLimit',
    'attachMetadata',
  ]);
  for (const k of Object.keys(spec)) if (!allowedSpec.has(k)) p.push(`${at}: unknown field spec.${k}`);
  const selector = spec['selector'];
  if (!isObject(selector) || !isStringMap(selector['matchLabels']) || Object.keys(selector['matchLabels'] as object).length === 0) {
    p.push(`${at}: spec.selector.matchLabels must be a non-empty map of strings`);
  }
  const ns = spec['namespaceSelector'];
  if (ns !== undefined) {
    if (!isObject(ns)) p.push(`${at}: spec.namespaceSelector must be an object`);
    else if (ns['matchNames'] !== undefined && !(Array.isArray(ns['matchNames']) && ns['matchNames'].every((n) => typeof n === 'string'))) {
      p.push(`${at}: spec.namespaceSelector.matchNames must be a list of strings`);
    }
  }
  const endpoints = spec[endpointsKey];
  if (!Array.isArray(endpoints) || endpoints.length === 0) return [...p, `${at}: spec.${endpointsKey} must be a non-empty list`];
  endpoints.forEach((e, i) => {
    const where = `${at}: spec.${endpointsKey}[${i}]`;
    if (!isObject(e)) {
      p.push(`${where} must be an object`);
      return;
    }
    for (const k of Object.keys(e)) if (!ENDPOINT_FIELDS.has(k)) p.push(`${where}: unknown field ${k}`);
    if (typeof e['port'] !== 'string' || e['port'] === '') p.push(`${where}.port must name a port`);
    if (e['path'] !== undefined && (typeof e['path'] !== 'string' || !e['path'].startsWith('/'))) p.push(`${where}.path must start with /`);
    if (e['scheme'] !== undefined && !['http', 'https'].includes(String(e['scheme']))) p.push(`${where}.scheme must be http or https`);
    for (const k of ['interval', 'scrapeTimeout'] as const) {
      if (e[k] !== undefined && (typeof e[k] !== 'string' || e[k] === '' || !PROM_DURATION.test(e[k] as string))) {
        p.push(`${where}.${k} must be a Prometheus duration such as 30s`);
      }
    }
    p.push(...relabelProblems(`${where}.relabelings`, e['relabelings']));
    p.push(...relabelProblems(`${where}.metricRelabelings`, e['metricRelabelings']));
  });
  return p;
}

const RULE_FIELDS = new Set(['alert', 'record', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations']);

/** A PrometheusRule's shape: spec.groups of named groups, each rule an alert or a record with an expr. */
function ruleProblems(o: K8sObject): string[] {
  const p: string[] = [];
  const at = describe(o);
  for (const k of Object.keys(o)) if (!['apiVersion', 'kind', 'metadata', 'spec'].includes(k)) p.push(`${at}: unknown field ${k}`);
  if (!o.metadata || typeof o.metadata.name !== 'string' || !DNS_1123_SUBDOMAIN.test(o.metadata.name))
    p.push(`${at}: metadata.name must be a DNS subdomain`);
  if (o.metadata?.labels !== undefined && !isStringMap(o.metadata.labels)) p.push(`${at}: metadata.labels must map strings to strings`);
  const spec = o['spec'];
  if (!isObject(spec)) return [...p, `${at}: spec is required`];
  for (const k of Object.keys(spec)) if (k !== 'groups') p.push(`${at}: unknown field spec.${k}`);
  const groups = spec['groups'];
  if (!Array.isArray(groups) || groups.length === 0) return [...p, `${at}: spec.groups must be a non-empty list`];
  groups.forEach((g, i) => {
    const where = `${at}: spec.groups[${i}]`;
    if (!isObject(g)) return p.push(`${where} must be an object`);
    for (const k of Object.keys(g))
      if (!['name', 'interval', 'rules', 'partial_response_strategy', 'limit'].includes(k)) p.push(`${where}: unknown field ${k}`);
    if (typeof g['name'] !== 'string' || g['name'] === '') p.push(`${where}.name is required`);
    if (g['interval'] !== undefined && !PROM_DURATION.test(String(g['interval']))) p.push(`${where}.interval is not a duration`);
    if (!Array.isArray(g['rules']) || g['rules'].length === 0) return p.push(`${where}.rules must be a non-empty list`);
    g['rules'].forEach((r: unknown, j: number) => {
      const rw = `${where}.rules[${j}]`;
      if (!isObject(r)) return p.push(`${rw} must be an object`);
      for (const k of Object.keys(r)) if (!RULE_FIELDS.has(k)) p.push(`${rw}: unknown field ${k}`);
      if ((typeof r['alert'] === 'string') === (typeof r['record'] === 'string')) p.push(`${rw}: wants alert or record, one of them`);
      if (typeof r['expr'] !== 'string' || r['expr'] === '') p.push(`${rw}.expr must be a PromQL expression`);
      if (r['for'] !== undefined && !PROM_DURATION.test(String(r['for']))) p.push(`${rw}.for is not a duration`);
      for (const k of ['labels', 'annotations'] as const)
        if (r[k] !== undefined && !isStringMap(r[k])) p.push(`${rw}.${k} must map strings to strings`);
      return undefined;
    });
    return undefined;
  });
  return p;
}
