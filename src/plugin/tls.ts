import { credentials, experimental, ServerCredentials, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';

/** How often a plugin re-reads its certificate files. Rotated ones serve new connections. */
export const DEFAULT_PLUGIN_TLS_REFRESH_MS = 5_000;

/** TLS for the plugin's own listener: the gateway dials it with TLS (POLKU_PLUGIN_TLS_* on the gateway). */
export interface PluginServeTls {
  /** The plugin's certificate (PEM), e.g. a mounted Secret's `tls.crt`. */
  certFile: string;
  /** Its private key (PEM). */
  keyFile: string;
  /** Set: the gateway must present a client certificate this CA bundle verifies (mTLS). */
  clientCaFile?: string;
  /** How often the files are re-read. Default 5000 ms. */
  refreshIntervalMs?: number;
}

/** TLS for registering with a gateway that serves TLS (POLKU_TLS_* on the gateway). */
export interface PluginDialTls {
  /** CA bundle verifying the gateway. Default: the system's roots (files are then read once). */
  caFile?: string;
  /** A client certificate for a gateway that requires one (mTLS), with `keyFile`. */
  certFile?: string;
  keyFile?: string;
  /** The name the gateway's certificate carries, when it is not the host dialled. */
  serverName?: string;
  /** How often the files are re-read. Default 5000 ms. */
  refreshIntervalMs?: number;
}

/** Reads `path` now so a wrong path fails at start, naming the option. */
function readable(option: string, path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TypeError(`${option}=${path} cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

/** Server credentials that follow the files (grpc-js's FileWatcherCertificateProvider); plaintext without `tls`. */
export function pluginServerCredentials(tls: PluginServeTls | undefined): ServerCredentials {
  if (tls === undefined) return ServerCredentials.createInsecure();
  if (!tls.certFile || !tls.keyFile) throw new TypeError('tls needs both certFile and keyFile');
  readable('tls.certFile', tls.certFile);
  readable('tls.keyFile', tls.keyFile);
  readable('tls.clientCaFile', tls.clientCaFile);
  const provider = new experimental.FileWatcherCertificateProvider({
    certificateFile: tls.certFile,
    privateKeyFile: tls.keyFile,
    caCertificateFile: tls.clientCaFile,
    refreshIntervalMs: tls.refreshIntervalMs ?? DEFAULT_PLUGIN_TLS_REFRESH_MS,
  });
  const mutual = tls.clientCaFile !== undefined;
  // grpc-js hands its first argument to the identity side and the second to the CA side.
  return experimental.createCertificateProviderServerCredentials(provider, mutual ? provider : null, mutual);
}

/** Channel credentials to a gateway: TLS with `tls` (or an https:// address), else plaintext. */
export function pluginDialCredentials(
  tls: PluginDialTls | undefined,
  https: boolean,
): { credentials: ChannelCredentials; options: ChannelOptions } {
  if (tls === undefined) return { credentials: https ? credentials.createSsl() : credentials.createInsecure(), options: {} };
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) throw new TypeError('register.tls: certFile and keyFile go together');
  const ca = readable('register.tls.caFile', tls.caFile);
  const cert = readable('register.tls.certFile', tls.certFile);
  const key = readable('register.tls.keyFile', tls.keyFile);
  const options: ChannelOptions = tls.serverName ? { 'grpc.ssl_target_name_override': tls.serverName } : {};
  if (ca === undefined) return { credentials: credentials.createSsl(null, key ?? null, cert ?? null), options };
  const refreshIntervalMs = tls.refreshIntervalMs ?? DEFAULT_PLUGIN_TLS_REFRESH_MS;
  const caProvider = new experimental.FileWatcherCertificateProvider({ caCertificateFile: tls.caFile, refreshIntervalMs });
  const identity =
    tls.certFile === undefined
      ? null
      : new experimental.FileWatcherCertificateProvider({ certificateFile: tls.certFile, privateKeyFile: tls.keyFile, refreshIntervalMs });
  return { credentials: experimental.createCertificateProviderChannelCredentials(caProvider, identity), options };
}
