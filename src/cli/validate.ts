import { checkDurableDir, describeCheck } from '../buffer/durable/check-log.js';
import { defaultPipeline } from '../config/default-pipeline.js';
import { polkuError } from '../errors.js';
import { settingsFromEnv } from '../config/env.js';
import { addForwarding } from '../config/forwarding.js';
import { unknownVariables } from '../config/unknown-variables.js';
import { loadPipeline } from '../config/load-pipeline.js';
import { silentLogger } from '../observability/logger.js';
import { createRegistry } from '../observability/metrics.js';
import { EXIT, flag, type Command } from './command.js';
import { environmentHelp } from './serve.js';

/**
 * `polku validate [--config FILE]`: loads the environment and the pipeline module and builds the
 * hub without serving. In durable mode it also checks the log directory, read-only: every
 * record's checksum, a torn tail, the cursor file, and what damage lost (events by seq gap,
 * bytes, stretches skipped; per log and per segment, as recovery would count them). Prints a
 * summary; any problem throws a coded error (exit 1). A torn tail alone is not a problem: the
 * next start cuts it off.
 */
export async function validate(configFlag: string | undefined): Promise<string> {
  const settings = settingsFromEnv();
  const configPath = configFlag ?? settings.configPath;
  const builder = configPath ? await loadPipeline(configPath) : defaultPipeline();
  // Checked as serve would add it, but never dialled: validate sends nothing.
  addForwarding(builder, settings.forward && { ...settings.forward, lazy: true }, configPath ?? '(embedded default)');
  const hub = builder.build({
    limits: settings.limits,
    buffer: settings.buffer,
    delivery: settings.delivery,
    maxSourceLabels: settings.maxSourceLabels,
    // Our own logger and registry: a module importing 'polku' gets its own copy of the package
    // (loaded through tsx), whose pino must not be asked to make one.
    logger: silentLogger(),
    registry: createRegistry(),
    ...(settings.durable ? { durable: settings.durable } : {}),
  });
  const d = builder.definition();
  // Building started what middleware start in init() (the Kubernetes enricher's pod watch): stop it.
  await Promise.all(d.middleware.map((m) => m.shutdown?.()));
  const list = (names: string[]): string => (names.length ? names.join(', ') : '(none)');
  const durable = d.durable ?? settings.durable;
  const { buffer } = hub.stats();
  const summary = [
    `pipeline OK: ${configPath ?? '(embedded default)'}`,
    `  ingestors:  ${list(d.ingestors.map((i) => i.name))}`,
    `  middleware: ${list(d.middleware.map((m) => m.name))}`,
    `  emitters:   ${list(d.emitters.map((e) => e.emitter.name + (e.isDefault ? '' : ' (by route_to only)')))}`,
    `  buffer:     ${buffer.capacity} events, ${buffer.maxBytes} bytes, overflow ${buffer.overflow}`,
    `  logging:    level ${settings.logLevel}, format ${settings.logFormat}`,
  ];
  for (const { name, didYouMean } of unknownVariables(process.env)) {
    summary.push(
      `  warning:    ${name} is not a setting of this gateway and is ignored${didYouMean ? `: did you mean ${didYouMean}?` : ''}`,
    );
  }
  if (!durable) return summary.join('\n');
  const check = await checkDurableDir(durable.dir);
  summary.push(describeCheck(check));
  if (!check.healthy) throw polkuError('POLKU_ERR_LOG_DAMAGED', summary.join('\n'));
  return summary.join('\n');
}

/** `polku validate`. */
export const validateCommand: Command = {
  name: 'validate',
  summary: 'load the environment and the pipeline module, report problems, do not serve',
  usage: '[--config polku.config.ts]',
  description:
    'Exit 0 when the pipeline would start, 1 with the problem when it would not.\nIn durable mode also checks the log (checksums, torn tail, cursors).',
  flags: {
    config: { type: 'string', short: 'c', arg: 'FILE', help: 'the pipeline module [POLKU_CONFIG]' },
  },
  helpFooter: environmentHelp,
  async run({ values }) {
    console.log(await validate(flag(values, 'config')));
    return EXIT.ok;
  },
};
