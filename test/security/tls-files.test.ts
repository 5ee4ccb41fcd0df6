// CertificateFiles: what is published while files are rewritten one by one, and what start-up refuses.
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { X509Certificate } from 'node:crypto';
import { CertificateFiles, dialCredentials, LISTENER_TLS_LABELS } from '../../src/security/tls.js';
import { opensslMissing, TestCa, type LeafFiles } from '../helpers/certs.js';

const skip = opensslMissing();

describe('certificate files', { skip }, () => {
  let ca: TestCa;
  let first: LeafFiles;
  let second: LeafFiles;
  before(() => {
    ca = new TestCa();
    first = ca.server('first', 'first');
    second = ca.server('second', 'second');
  });

  const servedCn = (files: CertificateFiles) => new X509Certificate(files.secureContextOptions().cert as Buffer).subject;

  test('a rotation written file by file is taken only once the key matches the certificate; until then the old pair is kept', () => {
    const live = { cert: join(ca.dir, 'live.crt'), key: join(ca.dir, 'live.key') };
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    const problems: string[] = [];
    const files = new CertificateFiles(
      { certFile: live.cert, keyFile: live.key },
      LISTENER_TLS_LABELS,
      'POLKU_ERR_ENV_INVALID',
      60_000,
      (m) => problems.push(m),
    );
    const identities: string[] = [];
    files.addIdentityCertificateListener((u) => identities.push(u ? new X509Certificate(u.certificate).subject : 'null'));
    assert.equal(files.reload(), false, 'unchanged files publish nothing');

    copyFileSync(second.cert, live.cert); // the certificate is new, the key still the old one
    assert.equal(files.reload(), false);
    assert.equal(servedCn(files), 'CN=first');
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /POLKU_TLS_KEY_FILE=.* is not the key of POLKU_TLS_CERT_FILE=.*; still serving the previous certificate/);

    copyFileSync(second.key, live.key);
    assert.equal(files.reload(), true);
    assert.equal(servedCn(files), 'CN=second');
    assert.equal(files.reloadCount, 1);
    // The listener got the first pair on registration (next tick) and the second on reload; never a mismatched one.
    return new Promise<void>((resolve) =>
      process.nextTick(() => {
        assert.deepEqual(identities.sort(), ['CN=first', 'CN=second'].sort());
        resolve();
      }),
    );
  });

  test('start-up refuses half-set, unreadable and malformed files, naming each', () => {
    const garbage = join(ca.dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate');
    const make = (files: { certFile?: string; keyFile?: string; caFile?: string }) => () =>
      new CertificateFiles(files, LISTENER_TLS_LABELS, 'POLKU_ERR_ENV_INVALID');
    assert.throws(make({ keyFile: first.key }), /POLKU_TLS_KEY_FILE is set but POLKU_TLS_CERT_FILE is not/);
    assert.throws(make({ certFile: '/nope.crt', keyFile: first.key }), /POLKU_TLS_CERT_FILE=\/nope.crt cannot be read/);
    assert.throws(make({ certFile: garbage, keyFile: first.key }), /POLKU_TLS_CERT_FILE=.* is not a PEM certificate/);
    assert.throws(make({ certFile: first.cert, keyFile: garbage }), /POLKU_TLS_KEY_FILE=.* is not a PEM private key/);
    assert.throws(
      make({ certFile: first.cert, keyFile: first.key, caFile: garbage }),
      /POLKU_TLS_CLIENT_CA_FILE=.* is not a PEM certificate bundle/,
    );
    assert.throws(
      () => dialCredentials('webhook "w"', { certFile: first.cert }),
      /webhook "w": tls.certFile is set but webhook "w": tls.keyFile is not/,
    );
  });
});
