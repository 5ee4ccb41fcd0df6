/**
 * A Slack-style emitter plugin that prints each event as a Slack message on stdout instead of
 * posting it to a webhook (so it runs anywhere, no network needed).
 *
 *   node --import tsx examples/plugins/typescript/slack-like-emitter.ts --port 9001 [--register localhost:50051]
 *
 * Events the gateway routes to `slack` (`route_to: ["slack"]`, or every event when it is a
 * default emitter) arrive here in batches.
 */
import { commandLineOptions, serveEmitter, Severity, type EmitFailure, type Event } from '../../../src/plugin/index.js';

const ICONS: Partial<Record<Severity, string>> = {
  [Severity.SEVERITY_WARNING]: ':warning:',
  [Severity.SEVERITY_ERROR]: ':x:',
  [Severity.SEVERITY_CRITICAL]: ':rotating_light:',
};

/** What would be posted to Slack. */
const message = (e: Event): string => `${ICONS[e.severity] ?? ':information_source:'} *${e.eventType}* from \`${e.source || 'unknown'}\``;

const server = await serveEmitter({
  name: 'slack-like-emitter',
  emitterName: 'slack', // the name events use in route_to
  version: '1.0.0',
  description: 'Prints events as Slack messages',
  handleSignals: true, // SIGTERM/Ctrl-C: finish in-flight batches, unregister, exit
  logger: console,
  ...commandLineOptions(), // --port, --host, --register, --advertise
  emit(events) {
    const failed: EmitFailure[] = [];
    for (const e of events) {
      // An event Slack would refuse is reported, not retried; the rest of the batch still counts.
      if (e.eventType === '') failed.push({ id: e.id, error: 'event_type is empty: nothing to post', retryable: false });
      else console.log(message(e));
    }
    return { failed };
  },
});
console.log(`slack-like emitter listening on ${server.address}`);
