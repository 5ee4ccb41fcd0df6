import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Counter, type Registry } from 'prom-client';
import { isPolkuError, polkuError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { checkTenants, type CheckedTenant } from './tenant-spec.js';

/**
 * Reads a POLKU_TENANTS_FILE: `{"tenants":[...]}`. Throws POLKU_ERR_TENANTS_INVALID (a missing
 * file, bad JSON, a wrong field) naming the file.
 */
export function parseTenantsFile(path: string, text: string): CheckedTenant[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw polkuError('POLKU_ERR_TENANTS_INVALID', `${path}: not JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json) || !('tenants' in json)) {
    throw polkuError('POLKU_ERR_TENANTS_INVALID', `${path}: must be an object {"tenants":[...]}`);
  }
  const extra = Object.keys(json).filter((k) => k !== 'tenants');
  if (extra.length > 0)
    throw polkuError('POLKU_ERR_TENANTS_INVALID', `${path}: unknown field "${extra[0]}" (the file holds "tenants" only)`);
  return checkTenants((json as { tenants: unknown }).tenants, path);
}

/** Reads and checks the file now (start-up: a bad file stops the gateway); also returns the text read. */
export function loadTenantsFile(path: string): { tenants: CheckedTenant[]; text: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw polkuError('POLKU_ERR_TENANTS_INVALID', `${path}: cannot read the tenants file: ${(err as Error).message}`);
  }
  return { tenants: parseTenantsFile(path, text), text };
}

export interface TenantsFileWatchOptions {
  path: string;
  /** Called with each new, valid table. */
  onTable: (tenants: CheckedTenant[]) => void;
  logger: Logger;
  registry: Registry;
  /** The text the table in force was read from (start-up's read): an unchanged file is no reload. */
  initialText?: string;
}

/**
 * Reloads the tenants file when it changes. It watches the directory, not the file: a Kubernetes
 * Secret volume swaps a `..data` symlink, and an editor may replace the file; either way the file
 * is read again and applied when its text changed. A file that no longer reads or checks keeps
 * the table in force; the reason is logged and `polku_tenants_reloads_total{result="failed"}` counts it.
 */
export class TenantsFileWatcher {
  private watcher: FSWatcher | null = null;
  private lastText: string | undefined;
  private running: Promise<void> | null = null;
  private again = false;
  private readonly log: Logger;
  private readonly reloads: Counter<'result'>;

  constructor(private readonly o: TenantsFileWatchOptions) {
    this.log = o.logger.child({ component: 'tenants-file' });
    this.lastText = o.initialText;
    this.reloads =
      (o.registry.getSingleMetric('polku_tenants_reloads_total') as Counter<'result'> | undefined) ??
      new Counter({
        name: 'polku_tenants_reloads_total',
        help: 'Re-reads of POLKU_TENANTS_FILE after a change: ok (new table in force) or failed (old table kept)',
        labelNames: ['result'],
        registers: [o.registry],
      });
    this.reloads.labels('ok').inc(0);
    this.reloads.labels('failed').inc(0);
  }

  start(): void {
    // Secret volumes change "..data" and friends, editors write temporary names: re-read on any
    // change in the directory, and let the text comparison decide.
    this.watcher = watch(dirname(this.o.path), { persistent: false }, () => void this.check());
    this.watcher.on('error', (err) => this.log.warn({ err }, 'watching the tenants file stopped'));
  }

  /** Re-reads the file now (also what a directory change triggers); resolves once applied or refused. */
  check(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.reload().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        void this.check();
      }
    });
    return this.running;
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
  }

  private async reload(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.o.path, 'utf8');
    } catch (err) {
      // Mid-swap the file can be missing for a moment; the next change event reads it again.
      this.reloads.labels('failed').inc();
      this.log.warn({ err, file: this.o.path }, 'tenants file unreadable; the tenant table in force is kept');
      return;
    }
    if (text === this.lastText) return;
    let tenants: CheckedTenant[];
    try {
      tenants = parseTenantsFile(this.o.path, text);
    } catch (err) {
      this.lastText = text;
      this.reloads.labels('failed').inc();
      this.log.error(
        { err: isPolkuError(err) ? { code: err.code, message: err.message } : err, file: this.o.path },
        'tenants file invalid; the tenant table in force is kept',
      );
      return;
    }
    this.lastText = text;
    this.o.onTable(tenants);
    this.reloads.labels('ok').inc();
    this.log.info({ file: this.o.path, tenants: tenants.map((t) => t.name) }, 'tenants file reloaded');
  }
}
