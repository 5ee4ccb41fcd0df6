import { existsSync } from 'node:fs';
import { checkDurableDir, describeCheck } from '../buffer/durable/check-log.js';
import { checkDataDirWritable } from '../config/data-dir.js';
import { ENV_TABLE } from '../config/env-table.js';
import { settingsFromEnv } from '../config/env.js';
import { unknownVariables } from '../config/unknown-variables.js';
import { polkuError } from '../errors.js';
import { loadTenantsFile } from '../tenants/tenants-file.js';
import type { PipelineOverrides } from '../hub/builder.js';
import { silentLogger } from '../observability/logger.js';
import { createRegistry } from '../observability/metrics.js';
import { assemblePipeline } from './assemble.js';
import { EXIT, flag, type Command } from './command.js';
import { environmentHelp } from './serve.js';
import { typeCheck } from './typecheck.js';
import { probeTargets, type ProbeTarget } from './probe.js';
import type { ProbeResult } from '../emit/emitter.js';

/** `--probe-timeout-ms` unless given: long enough for a TLS handshake across a region. */
export const DEFAULT_PROBE_TIMEOUT_MS = 5000;

/** The variable each module setting overrides (the chart sets these variables from its values). */
const OVERRIDDEN: Readonly<Record<string, { readonly name: string }>> = {
  'buffer.capacity': ENV_TABLE.bufferCapacity,
  'buffer.maxBytes': ENV_TABLE.bufferMaxBytes,
  'buffer.overflow': ENV_TABLE.overflow,
  'delivery.batchSize': ENV_TABLE.batchSize,
  'delivery.flushIntervalMs': ENV_TABLE.flushIntervalMs,
  'delivery.maxAttempts': ENV_TABLE.emitMaxAttempts,
  'limits.maxMessageBytes': ENV_TABLE.maxMessageBytes,
  'limits.maxBatchEvents': ENV_TABLE.maxBatchEvents,
  'limits.maxPayloadBytes': ENV_TABLE.maxPayloadBytes,
  'limits.maxMetadataBytes': ENV_TABLE.maxMetadataBytes,
  'limits.maxEventBytes': ENV_TABLE.maxEventBytes,
  'limits.maxJsonDepth': ENV_TABLE.maxJsonDepth,
  'durable.dir': ENV_TABLE.dataDir,
  'durable.maxBytes': ENV_TABLE.durableMaxBytes,
  'durable.idempotencyMaxKeys': ENV_TABLE.idempotencyMaxKeys,
  'durable.streamWindowBatches': ENV_TABLE.durableStreamWindowBatches,
  'durable.streamWindowBytes': ENV_TABLE.durableStreamWindowBytes,
};

/**
 * One warning per setting the module gives itself: it wins over the environment and so over the
 * chart's values, silently in `serve`. Names the variable, and its value when it is set.
 */
export function overrideWarnings(overrides: PipelineOverrides, env: Readonly<Record<string, string | undefined>>): string[] {
  const warnings: string[] = [];
  for (const group of ['buffer', 'delivery', 'limits', 'durable'] as const) {
    for (const [key, value] of Object.entries(overrides[group] ?? {})) {
      const setting = `${group}.${key}`;
      const variable = OVERRIDDEN[setting]?.name;
      const shown = JSON.stringify(value);
      if (!variable) warnings.push(`the module sets ${setting} = ${shown}`);
      else if (env[variable] !== undefined)
        warnings.push(`the module sets ${setting} = ${shown}, overriding ${variable}=${env[variable]} (the environment or the chart)`);
      else warnings.push(`the module sets ${setting} = ${shown}; ${variable} (and the chart's value for it) would be ignored`);
    }
  }
  return warnings;
}

/**
 * `polku validate [--config FILE]`: what `serve` would run, checked without serving. The module is
 * type-checked with the TypeScript compiler (a .ts module, when typescript is installed), then
 * loaded and built exactly as serve builds it (forwarding, the Kubernetes enricher and the
 * OTLP/AHTI emitters from the environment included; nothing is dialled). Unknown option keys of
 * the builder's settings are refused; warnings name every setting the module overrides and every
 * unknown POLKU_* variable. In durable mode the data dir must be writable, and the log is checked
 * read-only: every record's checksum, a torn tail, the cursor file, and what damage lost. Prints a
 * summary; any problem throws a coded error (exit 1). A torn tail alone is not a problem: the next
 * start cuts it off.
 */
export async function validate(
  configFlag: string | undefined,
  o: { typeCheck?: boolean; probe?: { timeoutMs: number } } = {},
): Promise<{ report: string; ok: boolean }> {
  const settings = settingsFromEnv();
  const configPath = configFlag ?? settings.configPath;
  const warnings: string[] = [];
  // A missing module is left to the loader, which names it (POLKU_ERR_CONFIG_NOT_FOUND).
  if (configPath && /\.[cm]?tsx?$/.test(configPath) && o.typeCheck !== false && existsSync(configPath)) {
    const checked = await typeCheck(configPath);
    if (!checked.checked) warnings.push(`not type-checked: ${checked.reason}`);
    else if (checked.diagnostics.length > 0) {
      throw polkuError(
        'POLKU_ERR_CONFIG_INVALID',
        `pipeline module ${configPath} does not type-check (${checked.diagnostics.length} error${checked.diagnostics.length === 1 ? '' : 's'}):\n${checked.diagnostics.join('\n')}`,
      );
    }
  }
  // Forwarding is checked as serve would add it, but never dialled: validate sends nothing.
  const builder = await assemblePipeline(settings, { configPath, lazyForwarding: true });
  // POLKU_TENANTS_FILE as serve reads it: a bad file throws POLKU_ERR_TENANTS_INVALID naming the place.
  const tenantsFile = settings.tenantsFile ? loadTenantsFile(settings.tenantsFile) : undefined;
  const hub = builder.build({
    ...(tenantsFile ? { tenants: tenantsFile.tenants } : {}),
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
  if (typeof builder.overrides === 'function') warnings.push(...overrideWarnings(builder.overrides(), process.env));
  for (const { name, didYouMean } of unknownVariables(process.env)) {
    warnings.push(`${name} is not a setting of this gateway and is ignored${didYouMean ? `: did you mean ${didYouMean}?` : ''}`);
  }
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
    `  tenants:    ${hub.tenants === null ? '(none: one implicit tenant, no API key needed)' : list(hub.tenants.all.map((t) => t.name))}`,
    ...warnings.map((w) => `  warning:    ${w}`),
  ];
  if (durable) {
    await checkDataDirWritable(durable.dir, d.durable?.dir ? "the pipeline module's durable({ dir })" : 'POLKU_DATA_DIR');
    const check = await checkDurableDir(durable.dir);
    summary.push(describeCheck(check));
    if (!check.healthy) throw polkuError('POLKU_ERR_LOG_DAMAGED', summary.join('\n'));
  }
  if (!o.probe) return { report: summary.join('\n'), ok: true };
  // Every emitter, then every plugin the module names by address (an external ingestor): dialled
  // at once, each under the timeout; no event is sent. Then everything is closed again.
  const targets: ProbeTarget[] = [
    ...d.emitters.map(({ emitter }) => ({ name: emitter.name, probe: emitter.probe?.bind(emitter) })),
    ...d.ingestors.flatMap((i) => (isProbed(i) ? [{ name: i.name, probe: i.probe.bind(i) }] : [])),
  ];
  const probed = await probeTargets(targets, o.probe.timeoutMs);
  // Closed, not shut down: a plugin emitter's shutdown() asks the plugin process to stop, and
  // validate must leave a running plugin running (close() drops only our connection).
  await Promise.allSettled([
    ...d.emitters.map(({ emitter }) => (hasClose(emitter) ? emitter.close() : emitter.shutdown?.())),
    ...d.ingestors.map((i) => i.shutdown?.()),
  ]);
  const counted = `${targets.length - probed.failed} of ${targets.length} reachable or not probed`;
  summary.push(
    `probe (timeout ${o.probe.timeoutMs} ms):`,
    ...probed.lines,
    probed.failed === 0 ? `probe OK: ${counted}` : `probe FAILED: ${probed.failed} failed, ${counted}`,
  );
  return { report: summary.join('\n'), ok: probed.failed === 0 };
}

/** A plugin emitter (ExternalEmitter): close() leaves the plugin process alone. */
function hasClose<E extends object>(e: E): e is E & { close(): void } {
  return typeof (e as { close?: unknown }).close === 'function';
}

/** An ingestor that can be dialled: a plugin (ExternalIngestor). */
function isProbed<I extends object>(i: I): i is I & { probe(signal: AbortSignal): Promise<ProbeResult> } {
  return typeof (i as { probe?: unknown }).probe === 'function';
}

/** `polku validate`. */
export const validateCommand: Command = {
  name: 'validate',
  summary: 'check the environment and the pipeline module as serve would run them, without serving',
  usage: '[--config polku.config.ts] [--no-type-check] [--probe [--probe-timeout-ms MS]]',
  description:
    'Exit 0 when the pipeline would start (warnings included), 1 with the problem when it would not.\n' +
    'A .ts module is type-checked with the TypeScript compiler when typescript is installed; an unknown\n' +
    'option key of any component (a .js module too) fails with POLKU_ERR_OPTION_INVALID and the did-you-mean.\n' +
    'In durable mode also checks the data dir is writable and the log (checksums, torn tail, cursors).\n' +
    'With --probe, then dials every emitter and every plugin named by address, at once, each within\n' +
    '--probe-timeout-ms, sending no event: one line each (ok / FAIL with a hint / skip: no probe);\n' +
    'exit 1 when any failed.',
  flags: {
    config: { type: 'string', short: 'c', arg: 'FILE', help: 'the pipeline module [POLKU_CONFIG]' },
    'no-type-check': { type: 'boolean', default: false, help: 'skip the TypeScript type check' },
    probe: { type: 'boolean', default: false, help: 'dial every emitter and plugin (no event is sent)' },
    'probe-timeout-ms': { type: 'string', default: String(DEFAULT_PROBE_TIMEOUT_MS), arg: 'MS', help: 'longest wait for each probe' },
  },
  helpFooter: environmentHelp,
  async run({ values }) {
    const timeoutMs = Number(flag(values, 'probe-timeout-ms'));
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw polkuError(
        'POLKU_ERR_CLI_USAGE',
        `--probe-timeout-ms wants a whole number of milliseconds, got "${flag(values, 'probe-timeout-ms')}"`,
      );
    }
    const { report, ok } = await validate(flag(values, 'config'), {
      typeCheck: values['no-type-check'] !== true,
      ...(values['probe'] === true ? { probe: { timeoutMs } } : {}),
    });
    console.log(report);
    return ok ? EXIT.ok : EXIT.failed;
  },
};
