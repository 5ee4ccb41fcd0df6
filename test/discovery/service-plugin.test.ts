// How a Service (and its EndpointSlices) becomes a plugin: annotations, ports, addresses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pluginFromService } from '../../src/discovery/service-plugin.js';
import { endpointSlice, service } from './helpers.js';

const svc = (annotations: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  ...service('ns', 'audit', { port: 9100, annotations }),
  ...extra,
});

test('annotations name the plugin, its route name and port; the type comes from the polku.io/plugin label', () => {
  const p = pluginFromService(
    svc({ 'polku.io/name': 'audit-emitter', 'polku.io/emitter-name': 'audit', 'polku.io/port': 'grpc' }),
    [],
    undefined,
  );
  assert.deepEqual(p, {
    service: 'ns/audit',
    name: 'audit-emitter',
    kind: 'emitter',
    emitterName: 'audit',
    address: '127.0.0.1:9100',
    sameNode: false,
  });
});

test("without annotations: the Service name, its only port, and emitter name and sources left to the plugin's Info", () => {
  const p = pluginFromService(svc({}), [], undefined);
  assert.deepEqual(p, { service: 'ns/audit', name: 'audit', kind: 'emitter', address: '127.0.0.1:9100', sameNode: false });
  const i = pluginFromService(
    service('ns', 'syslog', { type: 'ingestor', port: 9200, annotations: { 'polku.io/sources': 'syslog, journald' } }),
    [],
    undefined,
  );
  assert.deepEqual(i, {
    service: 'ns/syslog',
    name: 'syslog',
    kind: 'ingestor',
    sources: ['syslog', 'journald'],
    address: '127.0.0.1:9200',
    sameNode: false,
  });
});

test('polku.io/port may be a port number, a target port number or a port name; several ports need it', () => {
  const two = {
    spec: {
      clusterIP: '10.0.0.9',
      ports: [
        { name: 'metrics', port: 9090, targetPort: 9090 },
        { name: 'plugin', port: 80, targetPort: 9100 },
      ],
    },
  };
  assert.equal((pluginFromService(svc({ 'polku.io/port': '80' }, two), [], undefined) as { address: string }).address, '10.0.0.9:80');
  assert.equal((pluginFromService(svc({ 'polku.io/port': '9100' }, two), [], undefined) as { address: string }).address, '10.0.0.9:80');
  assert.equal((pluginFromService(svc({ 'polku.io/port': 'plugin' }, two), [], undefined) as { address: string }).address, '10.0.0.9:80');
  assert.match((pluginFromService(svc({}, two), [], undefined) as { problem: string }).problem, /has 2 ports: set polku.io\/port/);
  assert.equal(
    (pluginFromService(svc({}, two), [], undefined) as { kind?: string }).kind,
    'emitter',
    'the type label is valid, so polku plugins can show it',
  );
  assert.match(
    (pluginFromService(svc({ 'polku.io/port': 'nope' }, two), [], undefined) as { problem: string }).problem,
    /"nope" is not a port of the Service/,
  );
});

test('a ready endpoint on this node wins (its own port), a not-ready or terminating one does not', () => {
  const slices = [
    endpointSlice('ns', 'audit', { name: 'grpc', port: 7000 }, [
      { ip: '10.1.0.5', node: 'n2' },
      { ip: '10.1.0.4', node: 'n1' },
    ]),
  ];
  assert.deepEqual(pluginFromService(svc({}), slices, 'n1'), {
    service: 'ns/audit',
    name: 'audit',
    kind: 'emitter',
    address: '10.1.0.4:7000',
    sameNode: true,
  });
  const notReady = [endpointSlice('ns', 'audit', { name: 'grpc', port: 7000 }, [{ ip: '10.1.0.4', node: 'n1', ready: false }])];
  assert.equal((pluginFromService(svc({}), notReady, 'n1') as { address: string }).address, '127.0.0.1:9100');
  const terminating = structuredClone(slices);
  terminating[0]!.endpoints[1]!.conditions.terminating = true;
  assert.equal((pluginFromService(svc({}), terminating, 'n1') as { sameNode: boolean }).sameNode, false);
  const otherPort = [endpointSlice('ns', 'audit', { name: 'metrics', port: 9090 }, [{ ip: '10.1.0.4', node: 'n1' }])];
  assert.equal((pluginFromService(svc({}), otherPort, 'n1') as { sameNode: boolean }).sameNode, false, 'only the plugin port counts');
});

test('a headless Service is dialled at a ready endpoint; none ready is a problem', () => {
  const headless = { spec: { clusterIP: 'None', ports: [{ name: 'grpc', port: 9100 }] } };
  const slices = [
    endpointSlice('ns', 'audit', { name: 'grpc', port: 7000 }, [
      { ip: '10.1.0.9', node: 'n2' },
      { ip: '10.1.0.8', node: 'n3' },
    ]),
  ];
  assert.equal((pluginFromService(svc({}, headless), slices, 'n1') as { address: string }).address, '10.1.0.8:7000');
  assert.match(
    (pluginFromService(svc({}, headless), [], 'n1') as { problem: string }).problem,
    /headless Service without a ready endpoint/,
  );
});

test('what cannot be used is a problem in words: type label, names, sources', () => {
  const problem = (s: unknown) => (pluginFromService(s as never, [], undefined) as { problem?: string }).problem;
  assert.match(problem(service('ns', 'x', { port: 1, labels: { 'polku.io/plugin': 'true' } }))!, /must be "emitter" or "ingestor"/);
  assert.match(problem(svc({ 'polku.io/name': 'bad name!' }))!, /polku.io\/name/);
  assert.match(problem(svc({ 'polku.io/emitter-name': '-dash' }))!, /polku.io\/emitter-name/);
  assert.match(
    problem(service('ns', 'i', { type: 'ingestor', port: 1, annotations: { 'polku.io/sources': ' , ' } }))!,
    /at least one source/,
  );
});

test('while EndpointSlices are watched, a Service selecting pods with none ready waits rather than have its cluster IP dialled', () => {
  const selecting = service('ns', 'audit', { port: 9100, selector: { app: 'audit' } });
  const waiting = pluginFromService(selecting, [], 'n1', true);
  assert.deepEqual(waiting, { problem: 'no ready endpoint yet: waiting for a ready pod of the Service', kind: 'emitter', waiting: true });
  const notReady = [endpointSlice('ns', 'audit', { name: 'grpc', port: 7000 }, [{ ip: '10.1.0.4', node: 'n2', ready: false }])];
  assert.equal((pluginFromService(selecting, notReady, 'n1', true) as { waiting?: true }).waiting, true);
  const elsewhere = [endpointSlice('ns', 'audit', { name: 'grpc', port: 7000 }, [{ ip: '10.1.0.4', node: 'n2' }])];
  assert.equal(
    (pluginFromService(selecting, elsewhere, 'n1', true) as { address: string }).address,
    '127.0.0.1:9100',
    'a ready pod elsewhere: the cluster IP',
  );
  // Without slices to go by, or without a selector (endpoints kept by hand), the cluster IP is dialled as before.
  assert.equal((pluginFromService(selecting, [], 'n1', false) as { address: string }).address, '127.0.0.1:9100');
  assert.equal((pluginFromService(svc({}), [], 'n1', true) as { address: string }).address, '127.0.0.1:9100');
});
