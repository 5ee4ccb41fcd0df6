import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createInterface } from 'node:readline';
import { ROOT, servePolku } from '../helpers/polku-process.js';

/*
 * The package as someone outside the checkout gets it: `npm pack`, then `npm install` of the
 * tarball into an empty folder, then the CLI and a TypeScript plugin written as
 * examples/plugins/typescript/README.md says, run from that folder.
 */
const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** The install needs polku's dependencies: from npm's cache, else the registry. */
const NETWORK = /ENOTCACHED|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|network/;

describe('the packed tarball, installed outside the checkout', { timeout: 600_000 }, () => {
  test('installs; polku --version, polku send to a gateway, and a TypeScript plugin from polku/plugin run', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'polku-pack-'));
    // npm pack runs `prepare` (the build), so dist/ in the tarball is the current source.
    await run(npm, ['pack', '--pack-destination', dir, '--loglevel', 'warn'], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
    const tarball = readdirSync(dir).find((f) => /^polku-.*\.tgz$/.test(f));
    assert.ok(tarball, 'npm pack wrote polku-<version>.tgz');

    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    try {
      await run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel', 'warn', join(dir, tarball)], {
        cwd: app,
        maxBuffer: 64 * 1024 * 1024,
      });
    } catch (err) {
      const text = String((err as { stderr?: string }).stderr ?? err);
      if (NETWORK.test(text) && process.env['CI'] !== 'true') {
        t.skip(`npm could not fetch polku's dependencies (no cache entry, no registry): ${text.split('\n')[0]}`);
        return;
      }
      throw err;
    }

    const bin = join(app, 'node_modules', '.bin', 'polku');
    const version = await run(bin, ['--version'], { cwd: app });
    assert.equal(version.stdout.trim(), (await import('../../package.json', { with: { type: 'json' } })).default.version);

    const gw = await servePolku([]);
    try {
      const sent = await run(bin, ['send', '--addr', `127.0.0.1:${gw.grpcPort}`, '--type', 'from.tarball', '--payload', 'hi'], {
        cwd: app,
      });
      const ack = JSON.parse(sent.stdout) as { eventIds: string[]; errors: unknown[] };
      assert.equal(ack.eventIds.length, 1);
      assert.deepEqual(ack.errors, []);
      await gw.line(/"event_type":"from.tarball"/);
    } finally {
      gw.child.kill('SIGTERM');
      await gw.exited;
    }

    // The guide's plugin, word for word, run with the tsx that came with polku.
    writeFileSync(
      join(app, 'my-emitter.ts'),
      `import { commandLineOptions, serveEmitter } from 'polku/plugin';

const server = await serveEmitter({
  name: 'slack-emitter',
  emitterName: 'slack',            // events use this name in route_to
  handleSignals: true,             // Ctrl-C / SIGTERM: finish in-flight batches, then exit
  ...commandLineOptions(),         // --port, --host, --register, --advertise
  async emit(events) {
    for (const e of events) console.log(\`*\${e.eventType}* from \\\`\${e.source}\\\`\`);
  },
});
console.log(\`listening on \${server.address}\`);
`,
    );
    // From the app folder: `--import tsx` resolves the tsx installed with polku, not the checkout's.
    const plugin = spawn(process.execPath, ['--import', 'tsx', 'my-emitter.ts', '--port', '0', '--host', '127.0.0.1'], {
      cwd: app,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stderr: string[] = [];
    plugin.stderr.on('data', (d: Buffer) => stderr.push(d.toString()));
    const exited = new Promise<number | null>((resolve) => plugin.on('close', resolve));
    try {
      const lines = createInterface({ input: plugin.stdout });
      let listening: RegExpExecArray | null = null;
      for await (const line of lines) {
        listening = /^listening on 127\.0\.0\.1:(\d+)$/.exec(line);
        if (listening) break;
      }
      assert.ok(listening && Number(listening[1]) > 0, `the plugin prints where it listens:\n${stderr.join('')}`);
    } finally {
      plugin.kill('SIGTERM');
      assert.equal(await exited, 0, stderr.join(''));
    }
  });
});
