// values.yaml and values.schema.json: every key documented, every object closed, and helm refusing
// bad values with a message that says what is wrong.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { CHART, ensureHelm, templateRaw } from './helm.js';

interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  anyOf?: Schema[];
  $ref?: string;
  description?: string;
  definitions?: Record<string, Schema>;
  [keyword: string]: unknown;
}

const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as Schema;
const valuesText = readFileSync(join(CHART, 'values.yaml'), 'utf8');

/**
 * Objects that are Kubernetes structures passed through to the pod spec as they are (the API server
 * checks them): the only places where additionalProperties may be true.
 */
const PASS_THROUGH = new Set([
  '/properties/global',
  '/properties/affinity/properties/nodeAffinity',
  '/properties/affinity/properties/podAffinity',
  '/properties/affinity/properties/podAntiAffinity',
  '/properties/topologySpreadConstraints/items/properties/labelSelector',
  '/properties/extraVolumes/items',
]);

before(() => {
  ensureHelm();
});

test('values.schema.json closes every object: additionalProperties false, a typed map, or a listed Kubernetes pass-through', () => {
  const open: string[] = [];
  const visit = (s: Schema, path: string) => {
    const isObject = s.type === 'object' || (Array.isArray(s.type) && s.type.includes('object'));
    if (isObject) {
      if (s.additionalProperties === undefined) open.push(`${path}: additionalProperties missing`);
      else if (s.additionalProperties === true && !PASS_THROUGH.has(path)) open.push(`${path}: additionalProperties true`);
      if (s.additionalProperties === true && !/passed through/.test(s.description ?? '') && path !== '/properties/global') {
        open.push(`${path}: a pass-through object must say so in its description`);
      }
    }
    for (const [k, v] of Object.entries(s.properties ?? {})) visit(v, `${path}/properties/${k}`);
    if (s.items) visit(s.items, `${path}/items`);
    if (typeof s.additionalProperties === 'object') visit(s.additionalProperties, `${path}/additionalProperties`);
    (s.anyOf ?? []).forEach((v, i) => visit(v, `${path}/anyOf/${i}`));
    for (const [k, v] of Object.entries(s.definitions ?? {})) visit(v, `${path}/definitions/${k}`);
  };
  visit(schema, '');
  assert.deepEqual(open, []);
  assert.equal(schema.additionalProperties, false);
});

test('every chart key in values.yaml has a comment on the line above it, and is in the schema', () => {
  const lines = valuesText.split('\n');
  const stack: { indent: number; key: string }[] = [];
  const uncommented: string[] = [];
  const unknown: string[] = [];
  let keys = 0;
  lines.forEach((line, i) => {
    const m = /^(\s*)([A-Za-z0-9_.\-/]+):(\s|$)/.exec(line);
    if (!m) return;
    const indent = m[1]!.length;
    while (stack.length > 0 && stack[stack.length - 1]!.indent >= indent) stack.pop();
    stack.push({ indent, key: m[2]! });
    // Walk the schema through `properties` only: keys inside a $ref'd Kubernetes structure or a
    // map (resources.requests.cpu, nodeSelector entries) are data, not keys of the chart.
    let node: Schema | undefined = schema;
    for (const { key } of stack) {
      if (!node || node.$ref || !node.properties) {
        node = undefined;
        break;
      }
      const next: Schema | undefined = node.properties[key];
      if (!next) {
        if (node === schema || node.additionalProperties === false) unknown.push(stack.map((s) => s.key).join('.'));
        node = undefined;
        break;
      }
      node = next;
    }
    if (!node) return;
    keys += 1;
    if (!/^\s*#/.test(lines[i - 1] ?? '')) uncommented.push(`${stack.map((s) => s.key).join('.')} (line ${i + 1})`);
  });
  assert.deepEqual(unknown, [], 'keys the schema does not know');
  assert.deepEqual(uncommented, [], 'keys without a comment right above them');
  assert.ok(keys > 80, `checked ${keys} keys`);
});

test('helm template --set mode=bogus fails, naming the allowed modes', async () => {
  const r = await templateRaw({ set: ['mode=bogus'] });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /values don't meet the specifications of the schema/);
  assert.match(r.stderr, /mode: mode must be one of the following: "daemonset", "deployment"/);
});

test('an unknown key fails, at the top level and nested, naming the key', async () => {
  const [top, nested, deep] = await Promise.all([
    templateRaw({ set: ['replicas=3'] }),
    templateRaw({ set: ['config.buffr.capacity=5'] }),
    templateRaw({ values: { securityContext: { runAsNonroot: true } } }),
  ]);
  assert.notEqual(top.code, 0);
  assert.match(top.stderr, /\(root\): Additional property replicas is not allowed/);
  assert.notEqual(nested.code, 0);
  assert.match(nested.stderr, /config: Additional property buffr is not allowed/);
  assert.notEqual(deep.code, 0);
  assert.match(deep.stderr, /securityContext: Additional property runAsNonroot is not allowed/);
});

test('a value of the wrong type or out of range fails, naming the key', async () => {
  const [type, range, policy, quantity] = await Promise.all([
    templateRaw({ set: ['config.buffer.capacity=lots'] }),
    templateRaw({ set: ['ports.grpc.hostPort=70000'] }),
    templateRaw({ set: ['config.buffer.overflowPolicy=drop_newest'] }),
    templateRaw({ set: ['resources.limits.memory=lots'] }),
  ]);
  assert.match(type.stderr, /config\.buffer\.capacity: Invalid type\. Expected: integer, given: string/);
  assert.match(range.stderr, /ports\.grpc\.hostPort: Must be less than or equal to 65535/);
  assert.match(
    policy.stderr,
    /config\.buffer\.overflowPolicy: config\.buffer\.overflowPolicy must be one of the following: "reject", "drop_oldest", "block"/,
  );
  assert.match(quantity.stderr, /resources\.limits\.memory/);
  for (const r of [type, range, policy, quantity]) assert.notEqual(r.code, 0);
});

test("a bad registry value fails, naming the key: below the gateway's minimum, an empty allowlist, a comma in an entry", async () => {
  const [interval, empty, comma, typo] = await Promise.all([
    templateRaw({ set: ['registry.heartbeatIntervalMs=5'] }),
    templateRaw({ values: { registry: { allowlist: [] } } }),
    templateRaw({ values: { registry: { allowlist: ['10.0.0.0/8,192.168.0.0/16'] } } }),
    templateRaw({ set: ['registry.maxPlugin=10'] }),
  ]);
  for (const r of [interval, empty, comma, typo]) assert.notEqual(r.code, 0);
  assert.match(interval.stderr, /registry\.heartbeatIntervalMs: Must be greater than or equal to 10/);
  assert.match(empty.stderr, /registry\.allowlist: Array must have at least 1 items/);
  assert.match(comma.stderr, /registry\.allowlist\.0: Does not match pattern/);
  assert.match(typo.stderr, /registry: Additional property maxPlugin is not allowed/);
});

test('values that conflict with each other fail with a message saying why', async () => {
  const cases: [string[], RegExp][] = [
    [['updateStrategy.type=Recreate'], /updateStrategy\.type Recreate is for deployment mode/],
    [['mode=deployment', 'updateStrategy.type=OnDelete'], /updateStrategy\.type OnDelete is for daemonset mode/],
    [['durable.enabled=true', 'durable.existingClaim=log'], /durable\.existingClaim is for deployment mode/],
    [
      ['mode=deployment', 'replicaCount=2', 'durable.enabled=true', 'durable.existingClaim=log'],
      /durable\.existingClaim holds one gateway's log: set replicaCount to 1/,
    ],
  ];
  const results = await Promise.all(cases.map(([set]) => templateRaw({ set })));
  results.forEach((r, i) => {
    assert.notEqual(r.code, 0, cases[i]![0].join(' '));
    assert.match(r.stderr, cases[i]![1]);
  });
});
