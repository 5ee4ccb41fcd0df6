import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Certificates made by `openssl` for a test: one CA, and leaf certificates it signs. Under
 * CI=true a missing openssl fails the test; elsewhere `opensslMissing()` lets it skip.
 */
export function opensslMissing(): string | false {
  const found = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (found.status === 0) return false;
  if (process.env['CI'] === 'true') throw new Error('openssl is required under CI=true (apt-get install openssl)');
  return 'openssl is not installed';
}

export interface LeafFiles {
  cert: string;
  key: string;
}

export class TestCa {
  readonly dir: string;
  readonly caCert: string;
  private readonly caKey: string;
  private serial = 1;

  constructor(name = 'polku-test-ca') {
    this.dir = mkdtempSync(join(tmpdir(), 'polku-certs-'));
    this.caCert = join(this.dir, 'ca.crt');
    this.caKey = join(this.dir, 'ca.key');
    openssl(
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'].concat([
        '-subj',
        `/CN=${name}`,
        '-keyout',
        this.caKey,
        '-out',
        this.caCert,
      ]),
    );
  }

  /** A server certificate for localhost and 127.0.0.1 (the SAN), written to `<name>.crt`/`.key`. */
  server(name = 'server', cn = 'polku-test-server'): LeafFiles {
    return this.leaf(name, cn, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  }

  /** A client certificate (clientAuth). */
  client(name = 'client', cn = 'polku-test-client'): LeafFiles {
    return this.leaf(name, cn, 'extendedKeyUsage=clientAuth');
  }

  /**
   * Rewrites `files` in place with a new server certificate from this CA (new serial, subject `cn`),
   * as a rotation does: certificate first, then key, each by rename so no reader sees half a file.
   */
  rotateServer(files: LeafFiles, cn: string): void {
    const next = this.server(`rotated-${this.serial}`, cn);
    writeFileSync(`${files.cert}.tmp`, readFileSync(next.cert));
    renameSync(`${files.cert}.tmp`, files.cert);
    writeFileSync(`${files.key}.tmp`, readFileSync(next.key));
    renameSync(`${files.key}.tmp`, files.key);
  }

  private leaf(name: string, cn: string, extensions: string): LeafFiles {
    const key = join(this.dir, `${name}.key`);
    const csr = join(this.dir, `${name}.csr`);
    const cert = join(this.dir, `${name}.crt`);
    const ext = join(this.dir, `${name}.ext`);
    writeFileSync(ext, `basicConstraints=CA:FALSE\n${extensions}\n`);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${cn}`, '-keyout', key, '-out', csr]);
    const serial = String(this.serial++ + 1000);
    openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      this.caCert,
      '-CAkey',
      this.caKey,
      '-set_serial',
      serial,
      '-days',
      '2',
      '-extfile',
      ext,
      '-out',
      cert,
    ]);
    return { cert, key };
  }
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
