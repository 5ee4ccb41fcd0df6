// A TypeScript emitter plugin for `npm run bench:plugin`: counts what it receives, nothing else,
// so the figure is the cost of the plugin path (gateway → gRPC → plugin), not of a destination.
import { serveEmitter } from '../src/plugin/index.js';

let received = 0;
const server = await serveEmitter({
  name: 'bench-sink',
  emitterName: 'plugin',
  port: Number(process.argv[2] ?? 0),
  host: '127.0.0.1',
  handleSignals: true,
  emit(events) {
    received += events.length;
  },
});
console.log(`READY ${server.port}`);
process.on('exit', () => console.log(`RECEIVED ${received}`));
