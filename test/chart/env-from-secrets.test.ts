// The chart's envFromSecrets: connection settings for a pipeline module's emitters (PostgreSQL,
// S3, …) from keys of Secrets that already exist, as secretKeyRef env entries on the gateway.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { ensureHelm, get, one, template, templateRaw, type K8sObject } from './helm.js';

before(() => {
  ensureHelm();
});

function gatewayEnv(objects: K8sObject[]): Array<{ name: string; value?: string; valueFrom?: unknown }> {
  const containers = get<Array<{ name: string; env: Array<{ name: string; value?: string; valueFrom?: unknown }> }>>(
    one(objects, 'DaemonSet'),
    'spec',
    'template',
    'spec',
    'containers',
  );
  return containers.find((c) => c.name === 'polku')!.env;
}

test('each entry becomes a secretKeyRef env variable; optional only when asked', async () => {
  const env = gatewayEnv(await template({ valuesFiles: ['ci/env-from-secrets-values.yaml'] }));
  const fromSecrets = env.filter((e) => e.valueFrom !== undefined && JSON.stringify(e.valueFrom).includes('secretKeyRef'));
  assert.deepEqual(fromSecrets, [
    { name: 'AUDIT_DB_URL', valueFrom: { secretKeyRef: { name: 'audit-db', key: 'url' } } },
    { name: 'AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: 'archive-s3', key: 'access-key-id' } } },
    { name: 'AWS_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: 'archive-s3', key: 'secret-access-key', optional: true } } },
  ]);
});

test('none by default', async () => {
  const env = gatewayEnv(await template());
  assert.equal(env.filter((e) => JSON.stringify(e.valueFrom ?? {}).includes('secretKeyRef')).length, 0);
});

test('the schema refuses an entry without a key, or with a field it does not know', async () => {
  const missing = await templateRaw({ values: { envFromSecrets: [{ env: 'X', secret: 's' }] } });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /envFromSecrets\/0.*key|missing properties: 'key'|key is required/i);
  const extra = await templateRaw({ values: { envFromSecrets: [{ env: 'X', secret: 's', key: 'k', value: 'plain' }] } });
  assert.notEqual(extra.code, 0);
  assert.match(extra.stderr, /value/);
});
