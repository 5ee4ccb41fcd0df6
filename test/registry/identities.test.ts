// Registry identities (POLKU_REGISTRY_IDENTITIES_FILE), their allowances, the token resolver, and
// the hub's bounded record of intake sources that protects what agents send on.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { settingsFromEnv } from '../../src/config/env.js';
import { SeenSources } from '../../src/hub/seen-sources.js';
import {
  allows,
  certificateNamesOf,
  certificateResolver,
  loadIdentities,
  peerHost,
  tokenIdentity,
  tokenResolver,
} from '../../src/registry/registry-identity.js';
import { PolkuError } from '../../src/errors.js';

const digest = (t: string) => `sha256:${createHash('sha256').update(t).digest('hex')}`;
const file = (doc: unknown) => () => JSON.stringify(doc);
const caller = (token?: string) => {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  return { metadata, peer: '127.0.0.1:5000' };
};

test('patterns: exact names, prefix-*, and * (which never counts as naming a protected source)', () => {
  assert.equal(allows(['slack', 'audit-*'], 'slack'), true);
  assert.equal(allows(['slack', 'audit-*'], 'audit-eu'), true);
  assert.equal(allows(['slack', 'audit-*'], 'slacker'), false);
  assert.equal(allows(['*'], 'anything'), true);
  assert.equal(allows(['*'], 'anything', true), false);
  assert.equal(allows(['csv-*'], 'csv-a', true), true);
});

test('the identities file: digests only, each entry checked and named in the error', () => {
  const ids = loadIdentities(
    'ids.json',
    file({ identities: [{ name: 'team-a', token: digest('a'), plugins: ['slack'], sources: ['csv-*'] }] }),
  );
  assert.deepEqual(
    ids.map((i) => [i.name, i.plugins, i.sources, i.tokenDigest?.toString('hex')]),
    [['team-a', ['slack'], ['csv-*'], digest('a').slice(7)]],
  );
  const bad = (doc: unknown): string => {
    try {
      loadIdentities('ids.json', file(doc));
    } catch (err) {
      assert.ok(err instanceof PolkuError);
      assert.equal(err.code, 'POLKU_ERR_ENV_INVALID');
      return err.message;
    }
    assert.fail('accepted');
  };
  assert.match(
    bad({ identities: [{ name: 'a', token: 'plain-token', plugins: [] }] }),
    /identities\[0\]\.token must be "sha256:<64 hex digits>"/,
  );
  assert.match(bad({ identities: [{ name: 'a', token: digest('x'), plugins: ['a b'] }] }), /identities\[0\]\.plugins must be a list/);
  assert.match(
    bad({
      identities: [
        { name: 'a', token: digest('x') },
        { name: 'a', token: digest('y') },
      ],
    }),
    /identities\[1\]\.name "a" repeats/,
  );
  assert.match(bad({}), /POLKU_REGISTRY_IDENTITIES_FILE="ids.json": expected \{"identities"/);
  assert.match(
    (() => {
      try {
        settingsFromEnv({ POLKU_REGISTRY_IDENTITIES_FILE: '/nonexistent/ids.json' });
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    })(),
    /^invalid environment: POLKU_REGISTRY_IDENTITIES_FILE="\/nonexistent\/ids.json": ENOENT/,
  );
});

test('the token resolver: open without identities; otherwise the identity whose digest matches, else UNAUTHENTICATED', () => {
  assert.equal(tokenResolver([])(caller()).authenticated, false);
  const resolve = tokenResolver([
    tokenIdentity('admin'),
    ...loadIdentities('f', file({ identities: [{ name: 'b', token: digest('b-token'), plugins: ['*'] }] })),
  ]);
  assert.equal(resolve(caller('admin')).name, 'registry-token');
  assert.equal(resolve(caller('b-token')).name, 'b');
  assert.throws(() => resolve(caller()), /a registration token is required/);
  assert.throws(() => resolve(caller('nope')), /the registration token is wrong/);
  assert.equal(peerHost('[::1]:5000'), '::1');
  assert.equal(peerHost('10.0.0.7:41000'), '10.0.0.7');
});

test('certificate identities: named by a client certificate, checked in the file, resolved before tokens', () => {
  const ids = loadIdentities(
    'ids.json',
    file({
      identities: [
        { name: 'team-a', certificate: 'plugins.team-a.svc', plugins: ['slack'], sources: [] },
        { name: 'team-b', token: digest('b'), certificate: ['b-one', 'b-two'], plugins: ['audit'], sources: [] },
      ],
    }),
  );
  assert.deepEqual(
    ids.map((i) => [i.name, i.certificateNames, i.tokenDigest !== undefined]),
    [
      ['team-a', ['plugins.team-a.svc'], false],
      ['team-b', ['b-one', 'b-two'], true],
    ],
  );
  assert.throws(
    () => loadIdentities('ids.json', file({ identities: [{ name: 'c', plugins: [] }] })),
    /identities\[0\] needs a token, a certificate, or both/,
  );
  assert.throws(
    () => loadIdentities('ids.json', file({ identities: [{ name: 'c', certificate: [], plugins: [] }] })),
    /identities\[0\]\.certificate must be/,
  );

  // grpc-js's auth context carries Node's peer certificate: subject CN and subjectaltname.
  const peer = (cn: string, san = '') => ({ sslPeerCertificate: { subject: { CN: cn }, subjectaltname: san } });
  assert.deepEqual(certificateNamesOf(peer('x', 'DNS:plugins.team-a.svc, IP Address:127.0.0.1')), ['x', 'plugins.team-a.svc']);
  assert.deepEqual(certificateNamesOf(undefined), []);

  const resolve = certificateResolver(ids, tokenResolver(ids));
  assert.equal(resolve({ ...caller(), authContext: peer('some-cn', 'DNS:plugins.team-a.svc') }).name, 'team-a');
  assert.equal(resolve({ ...caller(), authContext: peer('b-two') }).name, 'team-b');
  // No certificate naming an identity: the token decides, and without one the call is refused.
  assert.equal(resolve({ ...caller('b'), authContext: peer('stranger') }).name, 'team-b');
  assert.throws(() => resolve({ ...caller(), authContext: peer('stranger') }), /a registration token is required/);
  // A certificate-only identity never matches a token.
  assert.throws(() => resolve(caller('a')), /the registration token is wrong/);
});

test('the intake record is bounded, keeps sources in steady use, and remembers who parsed each', () => {
  const seen = new SeenSources(100);
  seen.note('agent', 'json');
  for (let i = 0; i < 1_000; i++) {
    seen.note(`spray-${i}`);
    seen.note('agent'); // an agent still sending
  }
  assert.ok(seen.size <= 100, `at most 100, holds ${seen.size}`);
  for (let i = 910; i < 1_000; i++) assert.ok(seen.lookup(`spray-${i}`), `the 90 newest are held (spray-${i})`);
  assert.deepEqual(seen.lookup('agent'), { parsedBy: 'json' });
  assert.equal(seen.lookup('spray-0'), undefined, 'the oldest are forgotten');
  assert.deepEqual(seen.lookup('spray-999'), { parsedBy: '' });
  seen.note('agent', 'csv-plugin');
  assert.deepEqual(seen.lookup('agent'), { parsedBy: 'csv-plugin' });
});
