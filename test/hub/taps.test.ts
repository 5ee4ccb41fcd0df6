import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Event } from '../../src/gen/polku/v1/event.js';
import { Taps, type TapSink } from '../../src/hub/taps.js';
import { hub, JsonIngestor } from '../../src/index.js';
import { createRegistry } from '../../src/observability/metrics.js';
import type { TopSnapshot } from '../../src/server/top-snapshot.js';
import { InMemoryEmitter } from '../../src/testing/index.js';
import { AckStream, events, startGateway, until } from '../helpers/gateway-harness.js';

/** A sink that takes `room` lines, then pushes back until `drain()`. */
class Sink implements TapSink {
  readonly lines: string[] = [];
  ended = false;
  private resume: (() => void) | undefined;
  constructor(public room = Number.POSITIVE_INFINITY) {}
  write(line: string): boolean {
    this.lines.push(line);
    return this.lines.length < this.room;
  }
  onDrain(resume: () => void): void {
    this.resume = resume;
  }
  end(): void {
    this.ended = true;
  }
  drain(): void {
    this.room = Number.POSITIVE_INFINITY;
    const r = this.resume;
    this.resume = undefined;
    r?.();
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
const batch = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => Event.fromPartial({ id: `e${from + i}`, source: 's', eventType: 't' }));
const parsed = (sink: Sink) => sink.lines.map((l) => JSON.parse(l) as Record<string, any>);

describe('Taps', () => {
  test('no tap open: not active, offers reach nobody', () => {
    const taps = new Taps({ registry: createRegistry() });
    assert.equal(taps.active, false);
    const sink = new Sink();
    const reader = taps.open({ stage: 'ingest', filter: {}, limit: 0 }, sink)!;
    assert.equal(taps.active, true);
    reader.close('reader_left');
    assert.equal(taps.active, false);
  });

  test('a full ring drops the rest of a batch, counted exactly; the reader hears of it once it flushes', async () => {
    const registry = createRegistry();
    const taps = new Taps({ registry, ringSize: 4 });
    const sink = new Sink();
    taps.open({ stage: 'middleware', filter: {}, limit: 0 }, sink);
    taps.offer('middleware', batch(10));
    await tick();
    const lines = parsed(sink);
    assert.deepEqual(
      lines.slice(1).map((l) => l['polku_tap'] ?? l['id']),
      [{ dropped: 6 }, 'e0', 'e1', 'e2', 'e3'],
    );
    const metric = await registry.getSingleMetric('polku_tap_dropped_total')!.get();
    assert.equal(metric.values.find((v) => v.labels['at'] === 'middleware')!.value, 6);
  });

  test('while the sink pushes back nothing is copied; after drain, the count and the new samples', async () => {
    const taps = new Taps({ registry: createRegistry() });
    const sink = new Sink(3); // the open line and two events fit
    taps.open({ stage: 'ingest', filter: {}, limit: 5 }, sink);
    taps.offer('ingest', batch(2));
    await tick();
    taps.offer('ingest', batch(7, 2)); // blocked: all 7 dropped
    await tick();
    sink.drain();
    taps.offer('ingest', batch(4, 9));
    await tick();
    assert.deepEqual(
      parsed(sink)
        .slice(1)
        .map((l) => l['polku_tap'] ?? l['id']),
      ['e0', 'e1', { dropped: 7 }, 'e9', 'e10', 'e11', { end: 'limit', sampled: 5, dropped: 7 }],
    );
    assert.equal(sink.ended, true);
    assert.equal(taps.active, false);
  });
});

describe('tap and top in durable mode', () => {
  test('an emitter tap sees what the durable queue delivered; top shows lag; drained() waits for it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-tap-durable-'));
    const memory = new InMemoryEmitter({ name: 'durable-memory' });
    const gw = await startGateway(hub().ingestor(new JsonIngestor()).emitter(memory).durable({ dir, fsync: false }));
    try {
      const res = await fetch(`http://127.0.0.1:${gw.metricsPort}/admin/tap?at=emitter:durable-memory&limit=3`);
      const reading = res.text();
      await until(async () => {
        const top = (await (await fetch(`http://127.0.0.1:${gw.metricsPort}/admin/top`)).json()) as TopSnapshot;
        return top.taps === 1;
      }, 'the tap to open');
      const stream = new AckStream(gw.client);
      const ack = await stream.send({ source: 'd', events: { events: events(3, (i) => ({ id: `d${i}` })) } });
      assert.equal(ack.event_ids.length, 3);
      await memory.drained();
      assert.equal(memory.count, 3);
      const lines = (await reading)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, any>);
      assert.deepEqual(
        lines.slice(1, -1).map((l) => l['id']),
        ['d0', 'd1', 'd2'],
      );
      assert.deepEqual(lines.at(-1), { polku_tap: { end: 'limit', sampled: 3, dropped: 0 } });
      const top = (await (await fetch(`http://127.0.0.1:${gw.metricsPort}/admin/top`)).json()) as TopSnapshot;
      const row = top.emitters.find((e) => e.name === 'durable-memory')!;
      assert.equal(row.forwarded, 3);
      assert.equal(row.lagEvents, 0);
      assert.equal(typeof row.lagSeconds, 'number');
      assert.ok(top.durable, 'the log figures');
      await stream.end();
    } finally {
      await gw.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
