// Property: adding a pod's context to an event's metadata never overwrites a key the event had,
// never takes metadata within the limit past it, adds only the pod's own keys and values (labels
// as a prefix of the pod's, in order), and reports a truncation exactly when something was left out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import * as K from '../../src/metadata-keys.js';
import { StringTable, toCachedPod } from '../../src/middleware/kubernetes/cached-pod.js';
import { writePodContext } from '../../src/middleware/kubernetes/write-context.js';
import { fuzzRuns } from './runs.js';

const size = (md: Record<string, string>) => Object.entries(md).reduce((n, [k, v]) => n + k.length + v.length, 0);
const text = fc.string({ maxLength: 40 });
const podArb = fc.record({
  metadata: fc.record({
    name: text,
    namespace: text,
    uid: text,
    labels: fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), text, { maxKeys: 12 }),
    ownerReferences: fc.array(
      fc.record({
        kind: fc.constantFrom('ReplicaSet', 'Job', 'DaemonSet', 'StatefulSet', 'Deployment', 'CronJob', 'Other'),
        name: text,
        controller: fc.boolean(),
      }),
      { maxLength: 2 },
    ),
  }),
  spec: fc.record({ nodeName: text, hostNetwork: fc.boolean() }),
  status: fc.record({ podIP: text, containerStatuses: fc.array(fc.record({ name: text, containerID: text }), { maxLength: 3 }) }),
});
const podKeys = [K.K8S_POD_NAME, K.K8S_POD_UID, K.K8S_POD_IP, K.K8S_NAMESPACE_NAME, K.K8S_NODE_NAME, K.K8S_CONTAINER_NAME];
const metadataArb = fc.dictionary(fc.oneof(fc.constantFrom(...podKeys, 'k8s.pod.labels.a', 'k8s.pod.labels.app'), text), text, {
  maxKeys: 8,
});

test('writePodContext: never overwrites, never passes the limit, adds only the pod context, reports truncation exactly', () => {
  fc.assert(
    fc.property(
      podArb,
      metadataArb,
      fc.option(text, { nil: undefined }),
      fc.integer({ min: 0, max: 1500 }),
      (shape, metadata, container, max) => {
        const pod = toCachedPod(shape, 'all', new StringTable(8));
        const md: Record<string, string> = { ...metadata };
        const before = { ...md };
        const complete = writePodContext(md, pod, container, max);
        for (const [k, v] of Object.entries(before)) assert.equal(md[k], v, `kept ${k}`);
        if (size(before) <= max) assert.ok(size(md) <= max, `${size(md)} > ${max}`);
        const offered = new Map<string, string>();
        for (let i = 0; i < pod.pairs.length; i += 2) offered.set(pod.pairs[i]!, pod.pairs[i + 1]!);
        if (container !== undefined) offered.set(K.K8S_CONTAINER_NAME, container);
        for (let i = 0; i < pod.labels.length; i += 2) offered.set(pod.labels[i]!, pod.labels[i + 1]!);
        const added = Object.keys(md).filter((k) => !(k in before));
        for (const k of added) assert.equal(md[k], offered.get(k), `added ${k} is the pod's`);
        const missing = [...offered.keys()].filter((k) => !(k in md));
        assert.equal(complete, missing.length === 0);
        // Labels: those added are a prefix of the ones the event did not have.
        const candidates = [];
        for (let i = 0; i < pod.labels.length; i += 2) if (!(pod.labels[i]! in before)) candidates.push(pod.labels[i]!);
        const addedLabels = candidates.filter((k) => k in md);
        assert.deepEqual(addedLabels, candidates.slice(0, addedLabels.length));
      },
    ),
    { numRuns: fuzzRuns() },
  );
});
