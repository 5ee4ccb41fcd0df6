// deploy/cert-manager-certificate.yaml issues the Secret the chart mounts, for the names agents dial.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { ensureHelm, get, one, parseManifests, ROOT, template, type K8sObject } from '../chart/helm.js';

before(() => ensureHelm());

const objects = (): K8sObject[] => parseManifests(readFileSync(join(ROOT, 'deploy', 'cert-manager-certificate.yaml'), 'utf8'));

test('the cert-manager Certificate issues the Secret the chart mounts, naming the Service agents dial', async () => {
  const all = objects();
  assert.deepEqual(
    all.map((o) => `${o.kind}/${o.metadata.name}`),
    ['Issuer/polku-selfsigned', 'Certificate/polku-ca', 'Issuer/polku-ca', 'Certificate/polku-tls'],
  );
  const cert = all.find((o) => o.kind === 'Certificate' && o.metadata.name === 'polku-tls')!;
  const spec = get<Record<string, unknown>>(cert, 'spec');
  assert.deepEqual(spec['usages'], ['server auth', 'client auth']);
  assert.deepEqual(spec['issuerRef'], { name: 'polku-ca', kind: 'Issuer' });

  const rendered = await template({ set: ['tls.enabled=true', `tls.secretName=${String(spec['secretName'])}`, 'tls.clientCA=true'] });
  const pod = get<{ volumes: Array<{ name: string; secret?: { secretName: string } }> }>(
    rendered.find((o) => o.kind === 'DaemonSet')!,
    'spec',
    'template',
    'spec',
  );
  assert.equal(pod.volumes.find((v) => v.name === 'tls')?.secret?.secretName, 'polku-tls');
  const service = one(rendered, 'Service');
  const dnsNames = spec['dnsNames'] as string[];
  const ns = service.metadata.namespace!;
  for (const name of [service.metadata.name, `${service.metadata.name}.${ns}.svc`]) assert.ok(dnsNames.includes(name), name);
  for (const o of all) assert.equal(o.metadata.namespace, ns);
});
