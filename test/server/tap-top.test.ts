import assert from 'node:assert/strict';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { filter, hub, JsonIngestor, transform } from '../../src/index.js';
import type { TopSnapshot } from '../../src/server/top-snapshot.js';
import { InMemoryEmitter } from '../../src/testing/index.js';
import { AckStream, events, sample, scrape, startGateway, until, type RunningGateway } from '../helpers/gateway-harness.js';

/** A tap read line by line over a plain HTTP request; `pause()` stops reading (a slow reader). */
class TapClient {
  readonly lines: Array<Record<string, any>> = [];
  status = 0;
  ended = false;
  private res: IncomingMessage | undefined;
  private readonly req: ClientRequest;
  readonly opened: Promise<number>;

  constructor(port: number, query: string) {
    let rest = '';
    this.req = request({ host: '127.0.0.1', port, path: `/admin/tap?${query}` });
    this.opened = new Promise((resolve, reject) => {
      this.req.on('response', (res) => {
        this.res = res;
        this.status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          rest += chunk;
          const parts = rest.split('\n');
          rest = parts.pop()!;
          for (const p of parts) this.lines.push(JSON.parse(p) as Record<string, any>);
        });
        res.on('end', () => (this.ended = true));
        resolve(this.status);
      });
      this.req.on('error', reject);
    });
    this.req.end();
  }

  get events(): Array<Record<string, any>> {
    return this.lines.filter((l) => !('polku_tap' in l));
  }

  control(kind: string): any[] {
    return this.lines.filter((l) => l['polku_tap']?.[kind] !== undefined).map((l) => l['polku_tap'][kind]);
  }

  /** Resolves once the tap's open line arrived: from here on it samples. */
  async open(): Promise<void> {
    await this.opened;
    await until(() => this.control('open').length === 1 || this.ended, 'the tap to open');
  }

  pause(): void {
    this.res!.pause();
  }

  resume(): void {
    this.res!.resume();
  }

  close(): void {
    this.req.destroy();
  }
}

const memory = new InMemoryEmitter({ name: 'memory' });
let gw: RunningGateway;
let stream: AckStream;

const batch = (source: string, list: Array<Record<string, unknown>>) => ({ source, events: { events: list } });

describe('GET /admin/tap and /admin/top', () => {
  before(async () => {
    gw = await startGateway(
      hub()
        .ingestor(new JsonIngestor())
        .middleware(filter((e) => !e.eventType.startsWith('noise.'), { name: 'no-noise' }))
        .middleware(transform((e) => ({ ...e, metadata: { ...e.metadata, env: 'test' } }), { name: 'tag-env' }))
        .emitter(memory),
    );
    stream = new AckStream(gw.client);
  });
  after(async () => {
    await stream.end();
    await gw.stop();
  });

  test('a tap after ingest sees events as they came; after middleware, as middleware left them; the limit ends it', async () => {
    const ingest = new TapClient(gw.metricsPort, 'at=ingest&source=tap-a&limit=3');
    const mw = new TapClient(gw.metricsPort, 'at=middleware&source=tap-a&limit=2');
    await Promise.all([ingest.open(), mw.open()]);
    assert.equal(ingest.status, 200);
    await stream.send(
      batch(
        'tap-b',
        events(2, (i) => ({ id: `b${i}` })),
      ),
    );
    await stream.send(
      batch(
        'tap-a',
        events(4, (i) => ({ id: `a${i}`, event_type: i === 0 ? 'noise.x' : 'user.x' })),
      ),
    );
    await until(() => ingest.ended && mw.ended, 'both taps to reach their limits');
    assert.deepEqual(
      ingest.events.map((e) => [e['id'], e['event_type'], e['metadata']['env']]),
      [
        ['a0', 'noise.x', undefined],
        ['a1', 'user.x', undefined],
        ['a2', 'user.x', undefined],
      ],
    );
    // The filter middleware took a0; the transform tagged the rest.
    assert.deepEqual(
      mw.events.map((e) => [e['id'], e['metadata']['env']]),
      [
        ['a1', 'test'],
        ['a2', 'test'],
      ],
    );
    // The last line says why the tap ended and what it sampled and dropped.
    assert.deepEqual(ingest.lines.at(-1), { polku_tap: { end: 'limit', sampled: 3, dropped: 0 } });
    assert.deepEqual(mw.lines.at(-1), { polku_tap: { end: 'limit', sampled: 2, dropped: 0 } });
  });

  test('an emitter tap sees what that emitter delivered, filtered by type prefix and a metadata value', async () => {
    const tap = new TapClient(gw.metricsPort, 'at=emitter:memory&type=order.&meta=region%3Deu&limit=2');
    await tap.open();
    await stream.send(
      batch('shop', [
        ...events(1, () => ({ id: 'o1', event_type: 'order.created', metadata: { region: 'us' } })),
        ...events(1, () => ({ id: 'o2', event_type: 'order.created', metadata: { region: 'eu' } })),
        ...events(1, () => ({ id: 'u1', event_type: 'user.created', metadata: { region: 'eu' } })),
        ...events(1, () => ({ id: 'o3', event_type: 'order.paid', metadata: { region: 'eu' } })),
      ]),
    );
    await until(() => tap.ended, 'the emitter tap to end');
    assert.deepEqual(
      tap.events.map((e) => e['id']),
      ['o2', 'o3'],
    );
    assert.ok(
      memory.events.some((e) => e.id === 'o3'),
      'delivered before it was tapped',
    );
  });

  test('bad parameters are refused naming the parameter; a fifth tap is refused with 429', async () => {
    const answers = await Promise.all(
      ['at=nowhere', 'at=emitter:nope', 'limit=-1', 'meta=novalue', 'colour=red'].map(async (q) => {
        const res = await fetch(`http://127.0.0.1:${gw.metricsPort}/admin/tap?${q}`);
        return [res.status, ((await res.json()) as { error: string }).error];
      }),
    );
    assert.deepEqual(answers, [
      [400, 'at must be ingest, middleware or emitter:NAME, got "nowhere"'],
      [400, 'at=emitter:nope: no emitter of that name runs (running: memory)'],
      [400, 'limit must be an integer from 0 (no limit) to 1000000, got "-1"'],
      [400, 'meta must be KEY=VALUE, got "novalue"'],
      [400, 'unknown tap parameter "colour" (at, source, type, meta, limit)'],
    ]);
    const four = Array.from({ length: 4 }, () => new TapClient(gw.metricsPort, 'at=ingest'));
    await Promise.all(four.map((t) => t.open()));
    const fifth = await fetch(`http://127.0.0.1:${gw.metricsPort}/admin/tap`);
    assert.equal(fifth.status, 429);
    assert.match(((await fifth.json()) as { error: string }).error, /4 taps are open already/);
    assert.equal(sample(await scrape(gw.metricsPort), 'polku_tap_readers'), 4);
    for (const t of four) t.close();
    await until(async () => sample(await scrape(gw.metricsPort), 'polku_tap_readers') === 0, 'the taps to close');
  });

  test('a reader that stops reading loses samples, counted, and never holds up delivery', async () => {
    const tap = new TapClient(gw.metricsPort, 'at=middleware&source=flood');
    await tap.open();
    tap.pause();
    const before = memory.events.length;
    const payload = 'x'.repeat(4096);
    const batches = 40;
    for (let b = 0; b < batches; b++) {
      const ack = await stream.send(
        batch(
          'flood',
          events(100, (i) => ({ id: `f${b}-${i}`, payload: Buffer.from(payload) })),
        ),
      );
      assert.equal(ack.event_ids.length, 100);
    }
    // Every event is delivered while the reader sleeps.
    await until(() => memory.events.length === before + batches * 100, 'all 4000 flood events delivered', 10_000);
    const droppedWhilePaused = sample(await scrape(gw.metricsPort), 'polku_tap_dropped_total{at="middleware"}')!;
    assert.ok(droppedWhilePaused > 0, 'samples were dropped');
    tap.resume();
    await until(() => tap.control('dropped').length > 0, 'the dropped notice');
    // Every flood event is either a line the reader got or counted as dropped (the notices sum to the metric).
    await until(() => tap.events.length + tap.control('dropped').reduce((n, d) => n + d, 0) === batches * 100, 'lines and drops to add up');
    assert.equal(
      tap.control('dropped').reduce((n, d) => n + d, 0),
      droppedWhilePaused,
    );
    tap.close();
  });

  test('GET /admin/top: per-stage counts, buffer and emitters from the counters', async () => {
    const first = (await (await fetch(`http://127.0.0.1:${gw.metricsPort}/admin/top`)).json()) as TopSnapshot;
    await stream.send(
      batch(
        'top',
        events(5, (i) => ({ id: `t${i}`, event_type: i < 2 ? 'noise.y' : 'user.y' })),
      ),
    );
    await until(() => memory.events.some((e) => e.id === 't4'), 'the top batch delivered');
    const second = (await (await fetch(`http://127.0.0.1:${gw.metricsPort}/admin/top`)).json()) as TopSnapshot;
    assert.equal(second.intake.received - first.intake.received, 5);
    assert.equal(second.intake.accepted - first.intake.accepted, 3);
    const mw = (s: TopSnapshot, name: string) => s.middleware.find((m) => m.name === name)!;
    assert.deepEqual(
      [mw(second, 'no-noise').given - mw(first, 'no-noise').given, mw(second, 'no-noise').kept - mw(first, 'no-noise').kept],
      [5, 3],
    );
    assert.equal(mw(second, 'tag-env').given - mw(first, 'tag-env').given, 3);
    const ingest = (s: TopSnapshot) => s.ingestors.find((i) => i.name === '(polku.v1 events)')!;
    assert.equal(ingest(second).events - ingest(first).events, 5);
    const em = (s: TopSnapshot) => s.emitters.find((e) => e.name === 'memory')!;
    assert.equal(em(second).forwarded - em(first).forwarded, 3);
    assert.equal(em(second).queued, 0);
    assert.equal(em(second).lagSeconds, null, 'memory mode has no log to lag behind');
    assert.equal(second.buffer.capacity > 0, true);
    assert.ok(second.uptimeMs >= first.uptimeMs);
  });
});
