// A TypeScript emitter plugin for `npm run bench:plugin`: counts what it receives, nothing else,
// so the figure is the cost of the plugin path (gateway → gRPC → plugin), not of a destination.
// On SIGUSR2 and on exit it prints `COUNT <events received> <CPU µs used so far>`, so the bench can divide the
// plugin's CPU by the events it took in (its CPU per event counts: it shares the machine).
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
const count = (): void => {
  const cpu = process.cpuUsage();
  console.log(`COUNT ${received} ${cpu.user + cpu.system}`);
};
process.on('SIGUSR2', count);
console.log(`READY ${server.port}`);
// The gateway calls the plugin's Shutdown when it stops, so the last count is printed on the way out.
process.on('exit', count);
