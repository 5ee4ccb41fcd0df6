import { dropReasonOf, type AckCode } from '../errors.js';
import type { Ack, AckError } from '../gen/polku/v1/gateway.js';
import type { DropCounter } from '../observability/metrics.js';
import type { TenantSeries } from '../tenants/tenant-metrics.js';

/**
 * Collects what happened to each event of one batch and turns it into the Ack.
 *
 * Invariant the Ack keeps: every event the batch carried is either in `event_ids` (accepted into
 * the buffer) or has an `AckError`; a batch-level refusal is one AckError with an empty event_id.
 * Every refusal also moves `polku_events_dropped_total` with its reason.
 */
export class BatchOutcome {
  readonly eventIds: string[] = [];
  readonly errors: AckError[] = [];
  received = 0;
  rateLimited = 0;
  sampledOut = 0;
  deduplicated = 0;
  filtered = 0;
  /** Events evicted by `drop_oldest` to make room for this batch. */
  overflowEvicted = 0;
  /** Events of this batch refused for lack of room. */
  bufferFull = 0;

  /** The caller's tenant's series, when tenants are configured: its refusals are counted there too. */
  tenantSeries: TenantSeries | undefined;

  constructor(private readonly drops: DropCounter) {}

  accept(id: string): void {
    this.eventIds.push(id);
  }

  /** Refuses one event. */
  refuse(eventId: string, code: AckCode, message: string): void {
    this.errors.push({ eventId, code, message });
    this.drops.count(dropReasonOf(code));
    this.tenantSeries?.refused(dropReasonOf(code), 1);
    this.tally(code, 1);
  }

  /** Refuses `count` events at once (the whole batch, or the rest of it) with one AckError. */
  refuseMany(count: number, code: AckCode, message: string): void {
    this.errors.push({ eventId: '', code, message });
    this.drops.count(dropReasonOf(code), count);
    if (count > 0) this.tenantSeries?.refused(dropReasonOf(code), count);
    this.tally(code, count);
  }

  /** Counts refusals that MiddlewareStats reports. */
  private tally(code: AckCode, n: number): void {
    switch (code) {
      case 'FILTERED':
        this.filtered += n;
        break;
      case 'RATE_LIMITED':
        this.rateLimited += n;
        break;
      case 'SAMPLED_OUT':
        this.sampledOut += n;
        break;
      case 'DUPLICATE':
        this.deduplicated += n;
        break;
      case 'BUFFER_FULL':
        this.bufferFull += n;
        break;
      default:
        break;
    }
  }

  toAck(bufferSize: number, bufferCapacity: number): Ack {
    return {
      eventIds: this.eventIds,
      errors: this.errors,
      bufferSize: BigInt(bufferSize),
      bufferCapacity: BigInt(bufferCapacity),
      middlewareStats: {
        rateLimitedCount: BigInt(this.rateLimited),
        sampledOutCount: BigInt(this.sampledOut),
        dedupCount: BigInt(this.deduplicated),
        filteredCount: BigInt(this.filtered),
        bufferOverflowCount: BigInt(this.overflowEvicted + this.bufferFull),
        totalReceived: BigInt(this.received),
        totalForwarded: BigInt(this.eventIds.length),
      },
    };
  }
}
