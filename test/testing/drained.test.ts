import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { EmitResult } from '../../src/emit/emitter.js';
import type { Event } from '../../src/gen/polku/v1/event.js';
import { hub, JsonIngestor } from '../../src/index.js';
import { InMemoryEmitter } from '../../src/testing/index.js';
import { ROOT, startProcess } from '../helpers/line-process.js';

const batch = (n: number) => ({
  source: 'drained',
  cluster: '',
  payload: {
    $case: 'raw' as const,
    value: { data: Buffer.from(Array.from({ length: n }, (_, i) => `{"event_type":"t.${i}"}`).join('\n')), format: 'ndjson' },
  },
});

/** Fails its first batch retryably, then keeps what it gets. */
class FlakyMemory extends InMemoryEmitter {
  calls = 0;
  override emit(events: readonly Event[]): Promise<EmitResult> {
    if (++this.calls === 1) return Promise.resolve({ status: 'retryable', error: 'first try fails' });
    return super.emit(events);
  }
}

/** Never answers: every batch stays in flight. */
class StuckMemory extends InMemoryEmitter {
  override emit(): Promise<EmitResult> {
    return new Promise(() => undefined);
  }
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('InMemoryEmitter.drained()', () => {
  test('resolves once everything accepted is delivered, retries included', async () => {
    const memory = new FlakyMemory();
    const h = hub().ingestor(new JsonIngestor()).emitter(memory).build();
    await h.start();
    const ack = await h.processBatch(batch(3));
    assert.equal(ack.eventIds.length, 3);
    await memory.drained();
    assert.equal(memory.count, 3);
    assert.equal(memory.calls, 2, 'the retry came before drained() resolved');
    await h.drain(1_000);
  });

  test('rejects after timeoutMs, saying what arrived, when delivery never finishes', async () => {
    const memory = new StuckMemory();
    const h = hub().ingestor(new JsonIngestor()).emitter(memory).build();
    await h.start();
    await h.processBatch(batch(2));
    await assert.rejects(memory.drained({ timeoutMs: 150 }), /emitter "memory": 0 events arrived, the rest still queued within 150 ms/);
    await h.drain(10);
  });

  test('resolves at once for an emitter in no hub', async () => {
    await new InMemoryEmitter().drained();
  });

  test("keeps a script alive until delivery (the hub's timers are unref'd): it exits 0, not 13", async () => {
    mkdirSync(join(ROOT, '.tmp'), { recursive: true });
    const dir = mkdtempSync(join(ROOT, '.tmp', 'drained-'));
    dirs.push(dir);
    const script = join(dir, 'script.ts');
    writeFileSync(
      script,
      [
        `import { hub, JsonIngestor } from '${join(ROOT, 'src/index.ts')}';`,
        `import { InMemoryEmitter } from '${join(ROOT, 'src/testing/index.ts')}';`,
        'const memory = new InMemoryEmitter();',
        'const h = hub().ingestor(new JsonIngestor()).emitter(memory).build();',
        'await h.start();',
        `await h.processBatch({ source: 's', cluster: '', payload: { $case: 'raw', value: { data: Buffer.from('{"event_type":"a"}'), format: 'json' } } });`,
        'await memory.drained();',
        'console.log(`delivered ${memory.count}`);',
      ].join('\n'),
    );
    const p = startProcess(process.execPath, ['--import', 'tsx', script]);
    const { code } = await p.exited;
    assert.equal(code, 0, p.stderr.join('\n'));
    assert.deepEqual(p.stdout, ['delivered 1']);
  });
});
