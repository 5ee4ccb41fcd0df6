import type { ChannelOptions } from '@grpc/grpc-js';
import { dialCredentials, PLAINTEXT_DIAL, type DialCredentials, type DialTlsOptions } from '../security/tls.js';
import { EmitterPluginClient, IngestorPluginClient } from '../gen/polku/v1/plugin.js';

/**
 * grpc-js reconnects a broken channel on its own, backing off from 1 s up to 120 s by default. A
 * plugin is usually a sidecar that restarts in seconds, so the backoff here stays short: a plugin
 * that comes back is used again within about a second of listening.
 */
export const RECONNECT_INITIAL_MS = 100;
export const RECONNECT_MAX_MS = 1_000;
/** An ingestor plugin may turn a few MiB of raw bytes into more MiB of events. */
export const MAX_RECEIVE_BYTES = 64 * 1024 * 1024;

const CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': RECONNECT_INITIAL_MS,
  'grpc.max_reconnect_backoff_ms': RECONNECT_MAX_MS,
  'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
};

let processDial: DialCredentials = PLAINTEXT_DIAL;

/**
 * How this process dials plugins unless a component says otherwise: `polku serve` sets it from
 * POLKU_PLUGIN_TLS_*; it covers the registry's probes, discovered plugins and external components.
 * Reads the files now (a bad one throws POLKU_ERR_ENV_INVALID naming its variable); `undefined`
 * goes back to plaintext.
 */
export function setPluginDialTls(tls: DialTlsOptions | undefined): void {
  processDial =
    tls === undefined
      ? PLAINTEXT_DIAL
      : dialCredentials('plugins', tls, 'POLKU_ERR_ENV_INVALID', {
          cert: 'POLKU_PLUGIN_TLS_CERT_FILE',
          key: 'POLKU_PLUGIN_TLS_KEY_FILE',
          ca: 'POLKU_PLUGIN_TLS_CA_FILE',
        });
}

/** The credentials plugins are dialled with: `dial` when given, else the process-wide ones. */
export function pluginDial(dial?: DialCredentials): DialCredentials {
  return dial ?? processDial;
}

/**
 * A client for `polku.v1.IngestorPlugin` at `target` (`host:port`, see `pluginTarget`), plaintext
 * or TLS as `dial` (default: {@link setPluginDialTls}) says. Creating it does not connect: the
 * channel connects on the first call.
 */
export function ingestorPluginClient(target: string, dial?: DialCredentials): IngestorPluginClient {
  const d = pluginDial(dial);
  return new IngestorPluginClient(target, d.credentials, { ...CHANNEL_OPTIONS, ...d.channelOptions });
}

/** A client for `polku.v1.EmitterPlugin` at `target`; connects on the first call. */
export function emitterPluginClient(target: string, dial?: DialCredentials): EmitterPluginClient {
  const d = pluginDial(dial);
  return new EmitterPluginClient(target, d.credentials, { ...CHANNEL_OPTIONS, ...d.channelOptions });
}
