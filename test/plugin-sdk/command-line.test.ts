import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commandLineOptions } from '../../src/plugin/index.js';

test('commandLineOptions reads --port and --host, and nothing when no flags are given', () => {
  assert.deepEqual(commandLineOptions(['--port', '9001', '--host', '127.0.0.1'], {}), { port: 9001, host: '127.0.0.1' });
  assert.deepEqual(commandLineOptions(['--port=0'], {}), { port: 0 });
  assert.deepEqual(commandLineOptions([], {}), {});
});

test('commandLineOptions turns --register and --advertise into register options, the token from POLKU_PLUGIN_TOKEN', () => {
  assert.deepEqual(commandLineOptions(['--register', 'localhost:50051', '--advertise', 'pod-ip:9001'], { POLKU_PLUGIN_TOKEN: 'tok' }), {
    register: { gateway: 'localhost:50051', advertise: 'pod-ip:9001', token: 'tok' },
  });
  assert.deepEqual(commandLineOptions(['--register', 'localhost:50051'], {}), { register: { gateway: 'localhost:50051' } });
  assert.deepEqual(commandLineOptions(['--advertise', 'x:1'], { POLKU_PLUGIN_TOKEN: 'tok' }), {}, '--advertise alone registers nothing');
});

test('commandLineOptions leaves the plugin its own flags and positionals, and refuses a malformed --port', () => {
  assert.deepEqual(commandLineOptions(['--channel', '#ops', 'extra', '--port', '9001'], {}), { port: 9001 });
  assert.throws(() => commandLineOptions(['--port', 'abc'], {}), /--port must be 0-65535/);
  assert.throws(() => commandLineOptions(['--port', '70000'], {}), /--port must be 0-65535/);
  assert.throws(() => commandLineOptions(['--port'], {}), /--port needs a value/);
});
