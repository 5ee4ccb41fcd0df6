import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import { AckStream, events, protoOnlyClient, sample, scrape, until } from '../helpers/gateway-harness.js';
import { ROOT, servePolku } from '../helpers/polku-process.js';

/* SIGHUP through a real `polku serve`: the module file changes, the open stream stays. */

const INDEX = pathToFileURL(join(ROOT, 'src/index.ts')).href;

/** A pipeline module whose one emitter appends event ids to `<dir>/<name>.txt`. */
function moduleText(dir: string, emitter: string, extra = ''): string {
  return `import { appendFileSync } from 'node:fs';
import { EmitResults, hub, type Emitter, type Event } from '${INDEX}';
const sink: Emitter = {
  name: '${emitter}',
  async emit(events: readonly Event[]) {
    appendFileSync(${JSON.stringify(join(dir, `${emitter}.txt`))}, events.map((e) => e.id + '\\n').join(''));
    return EmitResults.success();
  },
};
export default hub().emitter(sink).delivery({ batchSize: 10, flushIntervalMs: 5 })${extra};
`;
}

const ids = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

describe('SIGHUP reloads the pipeline module', () => {
  test('a changed module is swapped in under an open stream; a broken one leaves it running; SIGTERM still drains', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-reload-'));
    const config = join(dir, 'polku.config.ts');
    writeFileSync(config, moduleText(dir, 'first'));
    const gw = await servePolku(['--config', config], { POLKU_SHUTDOWN_TIMEOUT_MS: '10000' });
    const client = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(client);
    const batch = async (prefix: string) => {
      const ack = await stream.send({ source: 'reload', events: { events: events(25, (i) => ({ id: `${prefix}-${i}` })) } });
      assert.deepEqual(ack.errors, []);
      assert.equal(ack.event_ids.length, 25);
      return ack.event_ids;
    };
    try {
      const before = await batch('one');
      await until(() => ids(join(dir, 'first.txt')).length === 25, 'the first emitter has batch one', 10_000);

      // The module now names another emitter and a buffer size only a restart can apply.
      writeFileSync(config, moduleText(dir, 'second', '.buffer({ capacity: 777 })'));
      gw.child.kill('SIGHUP');
      const reloaded = JSON.parse(await gw.line(/"msg":"pipeline reloaded"/)) as { emitters: string[]; removedEmitters: string[] };
      assert.deepEqual(reloaded.emitters, ['second']);
      assert.deepEqual(reloaded.removedEmitters, ['first']);
      const warning = JSON.parse(await gw.line(/keep their running values until a restart/)) as { settings: string[]; level: number };
      assert.deepEqual(warning.settings, ['buffer.capacity']);
      assert.equal(warning.level, 40);
      await gw.line(/"msg":"old pipeline drained"/);

      const after = await batch('two');
      await until(() => ids(join(dir, 'second.txt')).length === 25, 'the second emitter has batch two', 10_000);
      assert.deepEqual(ids(join(dir, 'second.txt')), after, 'the next events on the same stream go to the new emitter');
      assert.deepEqual(ids(join(dir, 'first.txt')), before, 'the old emitter got nothing after the swap');

      // A module that does not compile: the running pipeline stays, the log names the error.
      writeFileSync(config, moduleText(dir, 'third').replace('export default', 'export default (('));
      gw.child.kill('SIGHUP');
      const failed = JSON.parse(await gw.line(/reload of pipeline failed/)) as { code: string; msg: string; level: number };
      assert.equal(failed.code, 'POLKU_ERR_CONFIG_INVALID');
      assert.equal(failed.level, 50);
      assert.match(
        failed.msg,
        /still running the previous one: POLKU_ERR_CONFIG_INVALID: pipeline module .*polku\.config\.ts failed to load/,
      );
      const third = await batch('three');
      await until(() => ids(join(dir, 'second.txt')).length === 50, 'the second emitter has batch three', 10_000);
      assert.deepEqual(ids(join(dir, 'second.txt')), [...after, ...third]);
      assert.equal(existsSync(join(dir, 'third.txt')), false);

      const metrics = await scrape(gw.metricsPort);
      assert.equal(sample(metrics, 'polku_reloads_total{what="pipeline",result="ok"}'), 1);
      assert.equal(sample(metrics, 'polku_reloads_total{what="pipeline",result="failed"}'), 1);
      assert.equal(sample(metrics, 'polku_events_dropped_total{reason="emitter_removed"}'), 0);

      // SIGTERM still drains: the stream is ended UNAVAILABLE, the process exits 0.
      gw.child.kill('SIGTERM');
      assert.equal((await stream.status).code, 14);
      assert.equal((await gw.exited).code, 0);
      assert.ok(gw.stderr.some((l) => l.includes('"msg":"gateway stopped"')));
    } finally {
      client.close();
      if (gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill('SIGKILL');
      await gw.exited;
    }
  });

  test('durable mode: an emitter kept by name resumes at its cursor (nothing sent twice, nothing skipped)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-reload-durable-'));
    const config = join(dir, 'polku.config.ts');
    const keep = (file: string) => moduleText(dir, 'keep').replace(JSON.stringify(join(dir, 'keep.txt')), JSON.stringify(join(dir, file)));
    writeFileSync(config, keep('v1.txt'));
    const gw = await servePolku(['--config', config], { POLKU_DURABLE: 'true', POLKU_DATA_DIR: join(dir, 'data') });
    const client = protoOnlyClient(gw.grpcPort);
    const stream = new AckStream(client);
    try {
      const one = (await stream.send({ source: 'd', events: { events: events(30, (i) => ({ id: `d1-${i}` })) } })).event_ids;
      assert.equal(one.length, 30);
      await until(() => ids(join(dir, 'v1.txt')).length === 30, 'v1 has batch one', 10_000);
      writeFileSync(config, keep('v2.txt'));
      gw.child.kill('SIGHUP');
      await gw.line(/"msg":"old pipeline drained"/);
      const two = (await stream.send({ source: 'd', events: { events: events(30, (i) => ({ id: `d2-${i}` })) } })).event_ids;
      assert.equal(two.length, 30);
      await until(() => ids(join(dir, 'v2.txt')).length === 30, 'v2 has batch two', 10_000);
      assert.deepEqual(ids(join(dir, 'v1.txt')), one);
      assert.deepEqual(ids(join(dir, 'v2.txt')), two, 'the new "keep" starts where the old one stopped');
      gw.child.kill('SIGTERM');
      assert.equal((await gw.exited).code, 0);
    } finally {
      client.close();
      if (gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill('SIGKILL');
      await gw.exited;
    }
  });
});
