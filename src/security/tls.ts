import { credentials, experimental, ServerCredentials, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContextOptions } from 'node:tls';
import { polkuError, type ErrorCode } from '../errors.js';
import { optionKeys } from '../config/option-keys.js';

/** How often certificate files are read again to notice a rotation (cert-manager, a mounted Secret). */
export const DEFAULT_TLS_RELOAD_INTERVAL_MS = 5_000;

/**
 * The files of one TLS identity: a certificate and its key, and a CA bundle. On a listener the CA
 * verifies client certificates (which are then required: mTLS); on a dial it verifies the server.
 */
export interface TlsFiles {
  certFile?: string | undefined;
  keyFile?: string | undefined;
  caFile?: string | undefined;
}

/** A dial's TLS options: `{}` is TLS with the system's roots; the cert and key make it mTLS. */
export interface DialTlsOptions extends TlsFiles {
  /** The name the server's certificate must carry, when it is not the dialled host. */
  serverName?: string | undefined;
}

/** Every key of {@link DialTlsOptions}: a misspelt `tls.caFil` is refused, not ignored. */
export const DIAL_TLS_OPTION_KEYS = optionKeys<DialTlsOptions>({ certFile: true, keyFile: true, caFile: true, serverName: true });

/** What each file is called in errors: an environment variable, or an option of a component. */
export interface TlsFileLabels {
  cert: string;
  key: string;
  ca: string;
}

interface Loaded {
  cert: Buffer | undefined;
  key: Buffer | undefined;
  ca: Buffer | undefined;
}

type Listener<T> = (update: T | null) => void;

/**
 * Certificate files read from disk, checked, and read again every `reloadIntervalMs` while anyone
 * listens. A new set is published only when the files changed and are consistent (the key matches
 * the certificate): a rotation written file by file is picked up once both halves are on disk, and
 * until then the previous certificate keeps being served. It implements grpc-js's
 * `CertificateProvider`, so gRPC listeners and channels take new certificates for new connections
 * while open connections keep theirs; `onChange` tells an HTTPS server the same.
 */
export class CertificateFiles implements experimental.CertificateProvider {
  private current: Loaded;
  private timer: NodeJS.Timeout | null = null;
  private readonly caListeners = new Set<Listener<experimental.CaCertificateUpdate>>();
  private readonly identityListeners = new Set<Listener<experimental.IdentityCertificateUpdate>>();
  private readonly changeListeners = new Set<() => void>();
  private reloads = 0;

  /** Reads and checks the files now: a missing, unreadable or inconsistent file throws `code`, naming its label. */
  constructor(
    readonly files: TlsFiles,
    private readonly labels: TlsFileLabels,
    code: ErrorCode,
    private readonly reloadIntervalMs = DEFAULT_TLS_RELOAD_INTERVAL_MS,
    private readonly onReloadProblem: (message: string) => void = () => undefined,
  ) {
    if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
      const [set, unset] = files.certFile === undefined ? [labels.key, labels.cert] : [labels.cert, labels.key];
      throw polkuError(code, `${set} is set but ${unset} is not: a certificate and its key go together`);
    }
    const loaded = this.read();
    if (typeof loaded === 'string') throw polkuError(code, loaded);
    this.current = loaded;
  }

  /** How many times new files were taken since start. */
  get reloadCount(): number {
    return this.reloads;
  }

  /** Options for `tls.createSecureContext` / `server.setSecureContext` from the current files. */
  secureContextOptions(): SecureContextOptions {
    return {
      ...(this.current.cert ? { cert: this.current.cert, key: this.current.key } : {}),
      ...(this.current.ca ? { ca: this.current.ca } : {}),
    };
  }

  /** Calls `fn` after each reload; keeps the files watched until the returned function is called. */
  onChange(fn: () => void): () => void {
    this.changeListeners.add(fn);
    this.watch();
    return () => {
      this.changeListeners.delete(fn);
      this.maybeStop();
    };
  }

  /** Reads the files now (the timer does this every interval); true when new files were taken. */
  reload(): boolean {
    const next = this.read();
    if (typeof next === 'string') {
      this.onReloadProblem(`${next}; still serving the previous certificate`);
      return false;
    }
    if (same(next.cert, this.current.cert) && same(next.key, this.current.key) && same(next.ca, this.current.ca)) return false;
    this.current = next;
    this.reloads += 1;
    for (const l of this.identityListeners) l(this.identityUpdate());
    for (const l of this.caListeners) l(this.caUpdate());
    for (const l of this.changeListeners) l();
    return true;
  }

  addCaCertificateListener(listener: Listener<experimental.CaCertificateUpdate>): void {
    this.caListeners.add(listener);
    this.watch();
    process.nextTick(listener, this.caUpdate());
  }

  removeCaCertificateListener(listener: Listener<experimental.CaCertificateUpdate>): void {
    this.caListeners.delete(listener);
    this.maybeStop();
  }

  addIdentityCertificateListener(listener: Listener<experimental.IdentityCertificateUpdate>): void {
    this.identityListeners.add(listener);
    this.watch();
    process.nextTick(listener, this.identityUpdate());
  }

  removeIdentityCertificateListener(listener: Listener<experimental.IdentityCertificateUpdate>): void {
    this.identityListeners.delete(listener);
    this.maybeStop();
  }

  private caUpdate(): experimental.CaCertificateUpdate | null {
    return this.current.ca ? { caCertificate: this.current.ca } : null;
  }

  private identityUpdate(): experimental.IdentityCertificateUpdate | null {
    return this.current.cert && this.current.key ? { certificate: this.current.cert, privateKey: this.current.key } : null;
  }

  private watch(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.reload(), this.reloadIntervalMs);
    this.timer.unref(); // never keeps a process alive on its own
  }

  private maybeStop(): void {
    if (this.caListeners.size + this.identityListeners.size + this.changeListeners.size > 0 || !this.timer) return;
    clearInterval(this.timer);
    this.timer = null;
  }

  /** The files' contents, checked; a string says what is wrong, naming the file's label. */
  private read(): Loaded | string {
    const { certFile, keyFile, caFile } = this.files;
    const file = (path: string | undefined, label: string): Buffer | string | undefined => {
      if (path === undefined) return undefined;
      try {
        return readFileSync(path);
      } catch (err) {
        return `${label}=${path} cannot be read: ${(err as Error).message}`;
      }
    };
    const cert = file(certFile, this.labels.cert);
    const key = file(keyFile, this.labels.key);
    const ca = file(caFile, this.labels.ca);
    for (const f of [cert, key, ca]) if (typeof f === 'string') return f;
    const c = cert as Buffer | undefined;
    const k = key as Buffer | undefined;
    const a = ca as Buffer | undefined;
    if (c && k) {
      let x509: X509Certificate;
      try {
        x509 = new X509Certificate(c);
      } catch (err) {
        return `${this.labels.cert}=${certFile} is not a PEM certificate: ${(err as Error).message}`;
      }
      let privateKey;
      try {
        privateKey = createPrivateKey(k);
      } catch (err) {
        return `${this.labels.key}=${keyFile} is not a PEM private key: ${(err as Error).message}`;
      }
      if (!x509.checkPrivateKey(privateKey)) return `${this.labels.key}=${keyFile} is not the key of ${this.labels.cert}=${certFile}`;
    }
    if (a) {
      try {
        new X509Certificate(a);
      } catch (err) {
        return `${this.labels.ca}=${caFile} is not a PEM certificate bundle: ${(err as Error).message}`;
      }
    }
    return { cert: c, key: k, ca: a };
  }
}

function same(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined ? b === undefined : b !== undefined && a.equals(b);
}

// ---------------------------------------------------------------------------------------------
// Listeners

/** A listener's TLS as the environment gives it (POLKU_TLS_*). */
export interface ListenerTlsSettings {
  certFile: string;
  keyFile: string;
  /** Set: clients must present a certificate this bundle verifies (mTLS). */
  clientCaFile: string | undefined;
  reloadIntervalMs: number;
}

export const LISTENER_TLS_LABELS: TlsFileLabels = {
  cert: 'POLKU_TLS_CERT_FILE',
  key: 'POLKU_TLS_KEY_FILE',
  ca: 'POLKU_TLS_CLIENT_CA_FILE',
};

/** The listeners' certificate files, loaded and watched; shared by the gRPC and the HTTPS listener. */
export class ListenerTls {
  readonly files: CertificateFiles;
  readonly mutual: boolean;

  /** Reads the files now: a bad one throws POLKU_ERR_ENV_INVALID naming its variable. */
  constructor(settings: ListenerTlsSettings, onReloadProblem?: (message: string) => void) {
    this.mutual = settings.clientCaFile !== undefined;
    this.files = new CertificateFiles(
      { certFile: settings.certFile, keyFile: settings.keyFile, caFile: settings.clientCaFile },
      LISTENER_TLS_LABELS,
      'POLKU_ERR_ENV_INVALID',
      settings.reloadIntervalMs,
      onReloadProblem,
    );
  }

  /**
   * gRPC server credentials that follow the files. grpc-js's `createCertificateProviderServerCredentials`
   * names its parameters (ca, identity) but hands them to a constructor taking (identity, ca): the
   * identity provider goes first, the CA provider (null: no client certificates asked) second.
   */
  serverCredentials(): ServerCredentials {
    return experimental.createCertificateProviderServerCredentials(this.files, this.mutual ? this.files : null, this.mutual);
  }

  /**
   * Options for the HTTPS metrics listener: the same certificate. Client certificates are not asked
   * for there, even with a client CA: the kubelet's HTTPS probes present none.
   */
  httpsOptions(): SecureContextOptions {
    const { cert, key } = this.files.secureContextOptions();
    return { cert, key };
  }
}

/** Plaintext when `tls` is absent, today's behaviour. */
export function serverCredentials(tls: ListenerTls | undefined): ServerCredentials {
  return tls ? tls.serverCredentials() : ServerCredentials.createInsecure();
}

// ---------------------------------------------------------------------------------------------
// Dials

/** A dial's credentials and the channel options they need (the server name override). */
export interface DialCredentials {
  readonly credentials: ChannelCredentials;
  readonly channelOptions: ChannelOptions;
  /** Whether the dial uses TLS. */
  readonly secure: boolean;
}

export const PLAINTEXT_DIAL: DialCredentials = Object.freeze({
  credentials: credentials.createInsecure(),
  channelOptions: {},
  secure: false,
});

/**
 * Channel credentials for one dial. Absent `tls`: plaintext. With a `caFile`, the files are watched
 * and new connections use rotated ones; without it the system's roots verify the server (and a
 * client certificate, when given, is read once). `owner` names the component in errors
 * (`webhook "audit"`), which are POLKU_ERR_PIPELINE_INVALID unless `code` says otherwise.
 */
export function dialCredentials(
  owner: string,
  tls: DialTlsOptions | undefined,
  code: ErrorCode = 'POLKU_ERR_PIPELINE_INVALID',
  labels: TlsFileLabels = { cert: `${owner}: tls.certFile`, key: `${owner}: tls.keyFile`, ca: `${owner}: tls.caFile` },
): DialCredentials {
  if (tls === undefined) return PLAINTEXT_DIAL;
  const files = new CertificateFiles(tls, labels, code);
  const channelOptions: ChannelOptions = tls.serverName ? { 'grpc.ssl_target_name_override': tls.serverName } : {};
  if (tls.caFile !== undefined) {
    return {
      credentials: experimental.createCertificateProviderChannelCredentials(files, tls.certFile !== undefined ? files : null),
      channelOptions,
      secure: true,
    };
  }
  const o = files.secureContextOptions();
  return {
    credentials: credentials.createSsl(null, (o.key as Buffer | undefined) ?? null, (o.cert as Buffer | undefined) ?? null),
    channelOptions,
    secure: true,
  };
}
