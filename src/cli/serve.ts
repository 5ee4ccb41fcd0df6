import { collectDefaultMetrics } from 'prom-client';
import { settingsFromEnv } from '../config/env.js';
import { unknownVariables } from '../config/unknown-variables.js';
import { createLogger } from '../observability/logger.js';
import { createRegistry } from '../observability/metrics.js';
import { Gateway } from '../server/gateway.js';
import { kubernetesDiscovery } from '../discovery/index.js';
import { PluginRegistry } from '../registry/plugin-registry.js';
import { setPluginDialTls } from '../plugin-client/client.js';
import { loadTenantsFile, TenantsFileWatcher } from '../tenants/tenants-file.js';
import { ENV_VARIABLES } from '../config/env.js';
import { checkDataDirWritable } from '../config/data-dir.js';
import { EXIT, flag, type Command } from './command.js';
import { assemblePipeline } from './assemble.js';
import { pipelineReloadable, Reloader, type Reloadable } from './reload.js';

/**
 * What SIGHUP reloads, in order: the pipeline module first (registered by serve), then anything
 * else that registers here while serve starts (a tenants or credentials file). Each keeps its
 * running state when its reload fails.
 */
export const reloadables: Reloadable[] = [];

/**
 * `polku serve [--config FILE]`: runs the gateway until SIGTERM or SIGINT, then drains and exits
 * 0. A second signal while draining exits at once with status 1. SIGHUP reloads the pipeline
 * module (and the other {@link reloadables}) without stopping intake.
 */
export async function serve(configFlag: string | undefined): Promise<void> {
  const settings = settingsFromEnv();
  const logger = createLogger(settings.logLevel, undefined, settings.logFormat);
  // Names only: values may be tokens.
  logger.debug(
    {
      variables: Object.keys(process.env)
        .filter((k) => k.startsWith('POLKU_'))
        .sort(),
    },
    'environment read',
  );
  for (const { name, didYouMean } of unknownVariables(process.env)) {
    logger.warn(
      { variable: { name, didYouMean } },
      `${name} is not a setting of this gateway and is ignored${didYouMean ? `: did you mean ${didYouMean}?` : ''}`,
    );
  }
  // Certificate files are read before anything listens: a missing or mismatched one stops start-up.
  if (settings.pluginTls) setPluginDialTls(settings.pluginTls);
  const configPath = configFlag ?? settings.configPath;
  // The module, then what the environment adds (forwarding, the Kubernetes enricher, OTLP/AHTI out).
  const builder = await assemblePipeline(settings, { configPath });
  const registry = createRegistry();
  collectDefaultMetrics({ register: registry });
  // POLKU_TENANTS_FILE is read before anything listens: a bad file stops start-up.
  const tenantsFile = settings.tenantsFile ? loadTenantsFile(settings.tenantsFile) : undefined;
  const hub = builder.build({
    ...(tenantsFile ? { tenants: tenantsFile.tenants } : {}),
    limits: settings.limits,
    buffer: settings.buffer,
    delivery: settings.delivery,
    maxSourceLabels: settings.maxSourceLabels,
    logger,
    registry,
    ...(settings.durable ? { durable: settings.durable } : {}),
  });
  const definition = builder.definition();
  const durableDir = (definition.durable ?? settings.durable)?.dir;
  if (durableDir)
    await checkDataDirWritable(durableDir, definition.durable?.dir ? "the pipeline module's durable({ dir })" : 'POLKU_DATA_DIR');
  const bufferStats = hub.stats().buffer;
  logger.info(
    {
      pipeline: configPath ?? '(embedded default)',
      ingestors: definition.ingestors.map((i) => i.name),
      middleware: definition.middleware.map((m) => m.name),
      emitters: definition.emitters.map((e) => e.emitter.name),
      buffer: { capacity: bufferStats.capacity, maxBytes: bufferStats.maxBytes, overflow: bufferStats.overflow },
      durable: definition.durable ?? settings.durable ?? false,
      forward: settings.forward ?? false,
    },
    'pipeline loaded',
  );
  const tenants = hub.tenants;
  if (tenants === null) {
    logger.info('no tenants configured: one implicit tenant; any caller that reaches the ports may send, no API key needed');
  } else {
    logger.info(
      {
        tenants: tenants.all.map((t) => t.name),
        from: settings.tenantsFile ?? 'pipeline module .tenants()',
        ...(settings.tenantsFile && definition.tenants ? { replaced: 'pipeline module .tenants()' } : {}),
      },
      'tenants configured: every caller needs an API key (x-api-key / X-API-Key)',
    );
  }
  if (tenants !== null && settings.tenantsFile && tenantsFile) {
    const watcher = new TenantsFileWatcher({
      path: settings.tenantsFile,
      onTable: (table) => tenants.replace(table),
      logger,
      registry,
      initialText: tenantsFile.text,
    });
    watcher.start();
    // SIGHUP re-reads it too, for file systems whose changes fs.watch does not see.
    reloadables.push({ name: 'tenants', reload: () => watcher.check() });
  }
  // The live plugin table: PluginRegistry registrations and, with POLKU_DISCOVERY, Kubernetes Services.
  const plugins = new PluginRegistry({ ...settings.registry, pipeline: hub, logger, registry });
  logger.info({ registry: settings.registry.decision, identities: settings.registry.identities.map((i) => i.name) }, 'plugin registry');
  if (settings.discovery) {
    plugins.addSource(await kubernetesDiscovery({ ...settings.discovery, plugins, logger, registry }));
  }
  const gateway = new Gateway({
    hub,
    registry,
    logger,
    grpcAddr: settings.grpcAddr,
    metricsAddr: settings.metricsAddr,
    shutdownTimeoutMs: settings.shutdownTimeoutMs,
    adminToken: settings.adminToken,
    connections: settings.connections,
    metricsMaxConnections: settings.metricsMaxConnections,
    plugins,
    tls: settings.tls,
    otlp: settings.otlp,
    http: settings.http,
  });
  // Handlers go in before start: a signal that arrives while the gateway is starting (opening a
  // durable log can take seconds) waits for the start, then drains, instead of killing it.
  const started = gateway.start();
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal while draining: exiting now');
      process.exit(1);
    }
    stopping = true;
    started
      .catch(() => undefined)
      .then(() => gateway.shutdown(`received ${signal}`))
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  reloadables.unshift(
    pipelineReloadable({
      hub,
      settings,
      configPath,
      overrides: builder.overrides(),
      timeoutMs: settings.shutdownTimeoutMs,
      logger,
    }),
  );
  const reloader = new Reloader(reloadables, logger, registry);
  // SIGHUP (a closed terminal, or `kill -HUP`) reloads instead of killing the process. Once
  // started: a reload during start-up would race the durable log's opening.
  process.on('SIGHUP', () => {
    if (stopping) return;
    void started.then(
      () => (stopping ? undefined : reloader.request()),
      () => undefined, // a failed start is reported where it is awaited
    );
  });
  await started;
}

/** The environment table, for `polku serve --help` and `polku validate --help`. */
export function environmentHelp(): string {
  return `Environment:\n${ENV_VARIABLES.map(([name, def, help]) => `  ${name.padEnd(27)} ${help} [${def}]`).join('\n')}`;
}

/** `polku serve`. */
export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the gateway (the embedded default pipeline without --config)',
  usage: '[--config polku.config.ts]',
  description:
    'Runs until SIGTERM or SIGINT, then drains the buffer and exits 0; a second signal exits 1 at once.\n' +
    'Logs go to stderr (POLKU_LOG_FORMAT=pretty for people); the stdout emitter writes events to stdout.',
  flags: {
    config: { type: 'string', short: 'c', arg: 'FILE', help: 'the pipeline module [POLKU_CONFIG]' },
  },
  helpFooter: environmentHelp,
  async run({ values }) {
    await serve(flag(values, 'config'));
    return EXIT.running;
  },
};
