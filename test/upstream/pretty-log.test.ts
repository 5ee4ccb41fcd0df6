// POLKU_LOG_FORMAT=pretty: what one record looks like, written synchronously to the destination.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, prettyLine } from '../../src/observability/logger.js';

test('a record reads as time, level, [component], message, then key=value; an error stack below, indented', () => {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString('utf8')), done()) });
  const log = createLogger('info', sink, 'pretty').child({ component: 'grpc-emitter' });
  log.warn({ endpoint: '10.0.0.1:50051', attempt: 2, reason: 'no route' }, 'grpc endpoint down');
  log.error({ err: new Error('boom') }, 'shutdown failed');
  log.debug('not at info');
  assert.equal(lines.length, 2, 'below the level: nothing written');
  assert.match(
    lines[0]!,
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN {2}\[grpc-emitter\] grpc endpoint down endpoint=10\.0\.0\.1:50051 attempt=2 reason="no route"\n$/,
  );
  assert.match(lines[1]!, /^\S+ ERROR \[grpc-emitter\] shutdown failed\n {4}Error: boom\n {8}at /);
});

test('text that is not a JSON object passes through, one line', () => {
  assert.equal(prettyLine('plain text'), 'plain text\n');
  assert.equal(prettyLine('42\n'), '42\n');
});
