import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { GroupCommit } from '../buffer/durable/segment-log.js';
import type { DurableStore } from '../buffer/durable/durable-store.js';
import type { DurableEmitterQueue } from './durable-emitter-queue.js';

/** Durable mode's metrics: log size, per-emitter lag, dead letters, duplicates suppressed. */
/** Group commits' wait and write: a fraction of a millisecond to the 10 ms an Ack should take, and beyond. */
const COMMIT_SECONDS_BUCKETS = [0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1];

export class DurableMetrics {
  readonly deadLettered: Counter<'emitter' | 'reason'>;
  readonly idempotentResends: Counter;
  readonly replayed: Counter<'emitter'>;
  readonly maintenanceFailures: Counter;
  private readonly commitRecords: Histogram;
  private readonly commitWait: Histogram;
  private readonly commitWrite: Histogram;

  constructor(registry: Registry, store: () => DurableStore | null, queues: () => readonly DurableEmitterQueue[]) {
    const gauge = (name: string, help: string, read: (s: DurableStore) => number): void => {
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          const s = store();
          if (s) this.set(read(s));
        },
      });
    };
    gauge(
      'polku_log_events',
      'Events in the durable log (delivered ones are kept for replay until retention)',
      (s) => s.nextSeq - s.log.firstSeq,
    );
    gauge('polku_log_bytes', 'Bytes of the durable log on disk', (s) => s.log.bytes);
    gauge('polku_log_corrupt_records', 'Log records skipped because their checksum failed (since start)', (s) => s.corruptRecords);
    // Counters whose value the store keeps: each scrape adds what it grew by since the last.
    const total = (name: string, help: string, read: (s: DurableStore) => number): void => {
      let seen = 0;
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          const s = store();
          if (!s) return;
          const now = read(s);
          if (now > seen) this.inc(now - seen);
          seen = Math.max(seen, now);
        },
      });
    };
    total(
      'polku_durable_lost_events_total',
      'Acknowledged events lost to damage in the durable log: seq gaps across damaged stretches and records whose checksum fails (found at open and on read)',
      (s) => s.lostEvents,
    );
    total(
      'polku_durable_lost_bytes_total',
      'Bytes of the durable log lost to damage (found at open and on read; torn tails excluded)',
      (s) => s.lostBytes,
    );
    new Gauge({
      name: 'polku_emitter_lag_events',
      help: 'Log records an emitter has not reached yet',
      labelNames: ['emitter'],
      registers: [registry],
      collect() {
        for (const q of queues()) this.set({ emitter: q.name }, q.depth);
      },
    });
    new Gauge({
      name: 'polku_emitter_lag_seconds',
      help: 'How long the oldest event an emitter has not delivered has waited',
      labelNames: ['emitter'],
      registers: [registry],
      collect() {
        for (const q of queues()) this.set({ emitter: q.name }, q.lagSeconds);
      },
    });
    this.deadLettered = new Counter({
      name: 'polku_dead_letters_total',
      help: 'Events moved to the dead letters, by emitter and reason (failed, retries_exhausted, expired)',
      labelNames: ['emitter', 'reason'],
      registers: [registry],
    });
    this.idempotentResends = new Counter({
      name: 'polku_idempotent_resends_total',
      help: 'Events acknowledged without storing them again: their idempotency key was accepted within the window',
      registers: [registry],
    });
    this.replayed = new Counter({
      name: 'polku_replayed_events_total',
      help: 'Events re-sent to an emitter by a replay (time range or dead letters)',
      labelNames: ['emitter'],
      registers: [registry],
    });
    this.maintenanceFailures = new Counter({
      name: 'polku_durable_maintenance_failures_total',
      help: 'Runs of the log maintenance (cursor flush, deleting delivered segments) that failed, as on a full disk',
      registers: [registry],
    });
    // Where an Ack's wait goes: the queue behind the group being written, then the write. A few
    // hundred groups a second: one observation each is nothing beside the events they carry.
    this.commitRecords = new Histogram({
      name: 'polku_log_commit_records',
      help: 'Events per group commit of the durable log (one durable write each)',
      buckets: [1, 10, 50, 100, 200, 400, 800, 1600, 3200, 6400],
      registers: [registry],
    });
    this.commitWait = new Histogram({
      name: 'polku_log_commit_wait_seconds',
      help: "From a group commit's oldest append to its write starting: the wait behind the group written before",
      buckets: COMMIT_SECONDS_BUCKETS,
      registers: [registry],
    });
    this.commitWrite = new Histogram({
      name: 'polku_log_commit_write_seconds',
      help: 'The durable write of one group commit (O_DSYNC write, or write and fdatasync)',
      buckets: COMMIT_SECONDS_BUCKETS,
      registers: [registry],
    });
  }

  /** Records one group commit of the event log. */
  readonly commit = (c: GroupCommit): void => {
    this.commitRecords.observe(c.records);
    this.commitWait.observe(c.waitMs / 1000);
    this.commitWrite.observe(c.writeMs / 1000);
  };
}
