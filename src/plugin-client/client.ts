import { credentials, type ChannelOptions } from '@grpc/grpc-js';
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

/**
 * A plaintext client for `polku.v1.IngestorPlugin` at `target` (`host:port`, see `pluginTarget`).
 * Creating it does not connect: the channel connects on the first call.
 */
export function ingestorPluginClient(target: string): IngestorPluginClient {
  return new IngestorPluginClient(target, credentials.createInsecure(), CHANNEL_OPTIONS);
}

/** A plaintext client for `polku.v1.EmitterPlugin` at `target`; connects on the first call. */
export function emitterPluginClient(target: string): EmitterPluginClient {
  return new EmitterPluginClient(target, credentials.createInsecure(), CHANNEL_OPTIONS);
}
