// The chart's kubernetesEnricher block, rendered by the real helm: off (the default) adds no pods
// rule and no POLKU_K8S_* variable; on adds exactly get/list/watch on pods to a ClusterRole (a
// node's pods span namespaces), POLKU_K8S_ENRICH=true beside NODE_NAME from the downward API, and
// the service account token; discovery's own rules are unchanged either way.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { ENV_VARIABLES } from '../../src/config/env.js';
import { ensureHelm, get, NAMESPACE, one, ofKind, RELEASE, template, type K8sObject } from './helm.js';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}

const RBAC_KINDS = ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];
const PODS_RULE = { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] };
const DISCOVERY_RULES = [
  { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
];

const podSpec = (objects: K8sObject[]) => {
  const w = objects.filter((o) => o.kind === 'DaemonSet' || o.kind === 'Deployment');
  assert.equal(w.length, 1);
  return get<{ automountServiceAccountToken: boolean; containers: Array<{ name: string; env: EnvVar[] }> }>(
    w[0],
    'spec',
    'template',
    'spec',
  );
};
const env = (objects: K8sObject[]) =>
  new Map(
    podSpec(objects)
      .containers.find((c) => c.name === 'polku')!
      .env.map((e) => [e.name, e]),
  );
const rulesOf = (o: K8sObject) => get<Rule[]>(o, 'rules');
const allRules = (objects: K8sObject[]) => objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role').flatMap(rulesOf);

describe('chart: the Kubernetes enricher', () => {
  before(() => {
    ensureHelm();
  });

  test('off (the default): no pods rule anywhere, no POLKU_K8S_* variable', async () => {
    const objects = await template();
    assert.deepEqual(
      allRules(objects).filter((r) => r.resources.includes('pods')),
      [],
    );
    assert.deepEqual(rulesOf(one(objects, 'ClusterRole')), DISCOVERY_RULES);
    assert.deepEqual(
      [...env(objects).keys()].filter((k) => k.startsWith('POLKU_K8S_')),
      [],
    );
  });

  test('on: exactly get/list/watch on pods added to the ClusterRole, POLKU_K8S_ENRICH=true, NODE_NAME from spec.nodeName', async () => {
    const objects = await template({ set: ['kubernetesEnricher.enabled=true'] });
    assert.deepEqual(rulesOf(one(objects, 'ClusterRole')), [...DISCOVERY_RULES, PODS_RULE]);
    const e = env(objects);
    assert.equal(e.get('POLKU_K8S_ENRICH')?.value, 'true');
    assert.deepEqual(e.get('NODE_NAME')?.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
    // The chart's defaults are the gateway's own.
    const defaults = new Map(ENV_VARIABLES.map(([k, v]) => [k, v]));
    assert.equal(e.get('POLKU_K8S_ENRICH_LABELS')?.value, '');
    for (const k of ['POLKU_K8S_ENRICH_MAX_PODS', 'POLKU_K8S_ENRICH_DELETE_GRACE_MS']) assert.equal(e.get(k)?.value, defaults.get(k), k);
    assert.equal(podSpec(objects).automountServiceAccountToken, true);
  });

  test('on with discovery off: a ClusterRole holding the pods rule only, bound to the service account; the token is mounted', async () => {
    const objects = await template({
      set: ['kubernetesEnricher.enabled=true', 'discovery.enabled=false', 'kubernetesEnricher.labels={app,team}'],
    });
    assert.deepEqual(rulesOf(one(objects, 'ClusterRole')), [PODS_RULE]);
    const binding = one(objects, 'ClusterRoleBinding');
    assert.deepEqual(get(binding, 'roleRef'), {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: `${RELEASE}-${NAMESPACE}`,
    });
    assert.deepEqual(get(binding, 'subjects'), [{ kind: 'ServiceAccount', name: 'polku', namespace: NAMESPACE }]);
    assert.equal(ofKind(objects, 'Role').length, 0);
    assert.equal(podSpec(objects).automountServiceAccountToken, true);
    assert.equal(env(objects).get('POLKU_K8S_ENRICH_LABELS')?.value, 'app,team');
    assert.equal(env(objects).has('POLKU_DISCOVERY'), false);
  });

  test('on with discovery in listed namespaces: discovery keeps its Roles, pods get a ClusterRole of their own', async () => {
    const objects = await template({ valuesFiles: ['ci/kubernetes-enricher-values.yaml'] });
    assert.deepEqual(rulesOf(one(objects, 'ClusterRole')), [PODS_RULE]);
    const roles = ofKind(objects, 'Role');
    assert.deepEqual(
      roles.map((r) => r.metadata.namespace),
      ['plugins'],
    );
    assert.deepEqual(rulesOf(roles[0]!), DISCOVERY_RULES);
    assert.equal(env(objects).get('POLKU_K8S_ENRICH_LABELS')?.value, 'app,app.kubernetes.io/name');
  });

  test('rbac.create=false: no RBAC objects even with the enricher on', async () => {
    const objects = await template({ set: ['kubernetesEnricher.enabled=true', 'rbac.create=false'] });
    assert.deepEqual(
      objects.filter((o) => RBAC_KINDS.includes(o.kind)),
      [],
    );
  });
});
