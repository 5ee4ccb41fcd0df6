/**
 * What a chain of middleware costs: runs the gateway benchmark (bench/run.ts, gateway only)
 * alternately without middleware and with the five-step chain of bench/bench-middleware.config.ts,
 * `--rounds` times each, and prints the median accepted events/s of both and the cost.
 *
 *   npm run bench:middleware [-- --rounds 3 --duration-ms 10000]
 *
 * Alternating keeps slow drift of the machine from favouring one side.
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const PLAIN = 'bench/bench.config.ts';
const CHAIN = 'bench/bench-middleware.config.ts';
const TARGET_COST = 0.2;

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    'duration-ms': { type: 'string', default: '8000' },
    'warmup-ms': { type: 'string', default: '2000' },
  },
});

function acceptedPerSec(config: string): number {
  const run = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'bench/run.ts',
      '--skip-bare',
      '--json',
      '--config',
      config,
      '--duration-ms',
      values['duration-ms']!,
      '--warmup-ms',
      values['warmup-ms']!,
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  if (run.status !== 0) throw new Error(`bench/run.ts failed for ${config} (exit ${run.status})`);
  const json = JSON.parse(run.stdout.slice(run.stdout.indexOf('\n{') + 1)) as {
    gateway: { fullSpeed: { acceptedPerSec: number; ackErrors: number } };
  };
  if (json.gateway.fullSpeed.ackErrors > 0) throw new Error(`${config}: the load saw ${json.gateway.fullSpeed.ackErrors} refused events`);
  return json.gateway.fullSpeed.acceptedPerSec;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

const plain: number[] = [];
const chain: number[] = [];
for (let r = 0; r < Number(values.rounds); r++) {
  plain.push(acceptedPerSec(PLAIN));
  chain.push(acceptedPerSec(CHAIN));
}
const cost = 1 - median(chain) / median(plain);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
process.stdout.write(
  [
    '',
    `without middleware: ${plain.map(fmt).join(', ')} events/s (median ${fmt(median(plain))})`,
    `five middleware:    ${chain.map(fmt).join(', ')} events/s (median ${fmt(median(chain))})`,
    `cost of the chain:  ${(cost * 100).toFixed(1)} % (target <= ${TARGET_COST * 100} %): ${cost <= TARGET_COST ? 'PASS' : 'MISS'}`,
    '',
  ].join('\n'),
);
