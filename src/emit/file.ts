import { constants } from 'node:fs';
import { access, mkdir, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ComponentContext } from '../component-context.js';
import { polkuError } from '../errors.js';
import type { Event } from '../gen/polku/v1/event.js';
import type { Logger } from '../observability/logger.js';
import { EmitResults, type EmitResult, type Emitter, type EmitterHealth, type ProbeResult } from './emitter.js';
import { probeFail, probeFailure, probeOk } from './probe.js';
import { eventToJson } from './event-json.js';
import { checkOptionKeys, optionKeys } from '../config/option-keys.js';

export interface FileEmitterOptions {
  /** Default `file`. */
  name?: string;
  /** The file events are appended to; its directory is created when missing. */
  path: string;
  /** Size at which the file is rotated, bytes. Default 100 MiB. */
  maxBytes?: number;
  /** Rotated files kept (`path.1` … `path.N`) besides `path`; older ones are deleted. Default 5. */
  maxFiles?: number;
}

/** Every key of {@link FileEmitterOptions}, for refusing unknown ones at run time (the compiler keeps it complete). */
export const FILE_EMITTER_OPTION_KEYS = optionKeys<FileEmitterOptions>({ name: true, path: true, maxBytes: true, maxFiles: true });

/**
 * Appends each event to a file as one JSON line (see {@link eventToJson}), one append per batch.
 *
 * Rotation by size: when a batch would push `path` past `maxBytes`, `path` becomes `path.1`
 * (`path.1` becomes `path.2`, and so on; the file beyond `path.<maxFiles>` is deleted) and the batch
 * starts a new `path`. A batch is never split, so lines never are either: a batch larger than
 * `maxBytes` goes whole into a file of its own, which is then larger than `maxBytes`.
 *
 * Errors (a full disk, a missing permission) give a retryable result; the file is opened afresh
 * for the next batch, and bytes a failed append left behind are cut off again when possible, so a
 * retried batch does not follow half of itself.
 */
export class FileEmitter implements Emitter {
  readonly name: string;
  /** The file written to; rotated copies add `.1`, `.2`, …. */
  readonly path: string;
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  private handle: FileHandle | null = null;
  /** Bytes in `path`, counted from its size at open plus what was appended since. */
  private size = 0;
  /** The batch being written; the next one waits for it. */
  private tail: Promise<unknown> = Promise.resolve();
  private lastError: string | null = null;
  private closed = false;
  private log: Logger | null = null;

  constructor(options: FileEmitterOptions) {
    this.name = options.name ?? 'file';
    checkOptionKeys(`FileEmitter "${this.name}"`, options, FILE_EMITTER_OPTION_KEYS);
    this.path = options.path;
    this.maxBytes = options.maxBytes ?? 100 * 1024 * 1024;
    this.maxFiles = options.maxFiles ?? 5;
    if (!this.path) throw polkuError('POLKU_ERR_PIPELINE_INVALID', `file emitter "${this.name}": path is empty`);
    if (!Number.isSafeInteger(this.maxBytes) || this.maxBytes <= 0) {
      throw polkuError(
        'POLKU_ERR_PIPELINE_INVALID',
        `file emitter "${this.name}": maxBytes must be a positive integer, got ${this.maxBytes}`,
      );
    }
    if (!Number.isSafeInteger(this.maxFiles) || this.maxFiles < 0) {
      throw polkuError('POLKU_ERR_PIPELINE_INVALID', `file emitter "${this.name}": maxFiles must be 0 or more, got ${this.maxFiles}`);
    }
  }

  init(ctx: ComponentContext): void {
    this.log = ctx.logger.child({ component: 'file-emitter', emitter: this.name });
  }

  emit(events: readonly Event[]): Promise<EmitResult> {
    // Checked here, not when the batch's turn comes: a batch handed over before shutdown is written.
    if (this.closed) return Promise.resolve(EmitResults.retryable(`file emitter "${this.name}" is shut down`));
    // The queue sends one batch at a time already; chaining keeps lines whole for any other caller.
    const run = this.tail.then(() => this.write(events));
    this.tail = run;
    return run;
  }

  /**
   * The file can be written: it, or the directory it goes in (or the nearest existing parent,
   * since a missing directory is created), is writable by this process. Nothing is written.
   */
  async probe(signal: AbortSignal): Promise<ProbeResult> {
    try {
      const file = await stat(this.path).catch(() => null);
      if (file?.isDirectory()) return probeFail(`${this.path}: is a directory`, 'path names the file events are appended to');
      if (file) {
        await access(this.path, constants.W_OK);
        return probeOk(`${this.path} writable`);
      }
      let dir = dirname(this.path);
      while (!(await stat(dir).catch(() => null))) dir = dirname(dir);
      await access(dir, constants.W_OK);
      return probeOk(`${this.path} can be created (${dir} writable)`);
    } catch (err) {
      return probeFailure(this.path, err, signal);
    }
  }

  health(): EmitterHealth {
    return this.lastError === null ? { healthy: true, message: 'ok' } : { healthy: false, message: this.lastError };
  }

  /** Waits for the batch being written, then closes the file; later batches are refused as retryable. */
  async shutdown(): Promise<void> {
    this.closed = true;
    await this.tail;
    await this.close();
  }

  /** Never rejects: every failure becomes a result. */
  private async write(events: readonly Event[]): Promise<EmitResult> {
    if (events.length === 0) return EmitResults.success();
    let step = 'open';
    let sizeBefore = -1;
    try {
      let text = '';
      for (const event of events) text += JSON.stringify(eventToJson(event)) + '\n';
      const bytes = Buffer.from(text);
      let handle = this.handle ?? (await this.open());
      if (this.size > 0 && this.size + bytes.length > this.maxBytes) {
        step = 'rotate';
        await this.rotate();
        handle = await this.open();
      }
      step = 'write';
      sizeBefore = this.size;
      await handle.appendFile(bytes);
      this.size += bytes.length;
      this.lastError = null;
      return EmitResults.success();
    } catch (err) {
      const error = `cannot ${step} ${this.path}: ${(err as Error).message}`;
      this.lastError = error;
      if (sizeBefore >= 0) await this.handle?.truncate(sizeBefore).catch(() => {}); // not possible on every file (/dev/full)
      await this.close();
      return EmitResults.retryable(error);
    }
  }

  private async open(): Promise<FileHandle> {
    await mkdir(dirname(this.path), { recursive: true });
    const handle = await open(this.path, 'a');
    try {
      this.size = (await handle.stat()).size;
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
    this.handle = handle;
    return handle;
  }

  /** `path` → `path.1` → … → `path.<maxFiles>`, dropping the oldest. */
  private async rotate(): Promise<void> {
    await this.close();
    if (this.maxFiles === 0) {
      await unlink(this.path);
    } else {
      await unlinkIfPresent(`${this.path}.${this.maxFiles}`);
      for (let i = this.maxFiles - 1; i >= 1; i--) await renameIfPresent(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      await rename(this.path, `${this.path}.1`);
    }
    this.size = 0;
    this.log?.info({ path: this.path, maxBytes: this.maxBytes }, 'file rotated');
  }

  private async close(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    await handle?.close().catch(() => {}); // a handle that will not close is dropped all the same
  }
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
