// The README's "HTTP ingest" curl examples, run as written against a real `polku serve` (only the
// address changes): each prints what its comment says, a ULID standing for each `"…"`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, serveHttp } from '../helpers/polku-process.js';

interface Example {
  command: string;
  expected: string;
}

/** The bash block of the README's "HTTP ingest" section: each command (with its continuation lines) and its `# ` comment. */
function examples(): Example[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## HTTP ingest'), readme.indexOf('\n## ', readme.indexOf('## HTTP ingest') + 1));
  const block = /```bash\n([\s\S]*?)```/.exec(section)![1]!;
  const out: Example[] = [];
  let command = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('# ')) {
      out.push({ command: command.trim(), expected: line.slice(2) });
      command = '';
    } else if (line.trim() !== '') command += `${line}\n`;
  }
  return out;
}

const ULID = '[0-9A-HJKMNP-TV-Z]{26}';
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test("the README's HTTP ingest curl examples print what they say", { timeout: 60_000 }, async (t) => {
  const found = examples();
  assert.equal(found.length, 3);
  try {
    execFileSync('curl', ['--version']);
  } catch {
    if (process.env['CI'] === 'true') throw new Error('curl is missing: the README examples cannot run');
    t.skip('curl is not installed: the README examples were not run');
    return;
  }
  const gw = await serveHttp([]);
  try {
    for (const { command, expected } of found) {
      // `-w` prints the status after the body; curl is the last command of every example.
      const run = `${command.replaceAll('http://localhost:8080', gw.httpUrl)} -w ' %{http_code}'`;
      const printed = execFileSync('bash', ['-c', run], { encoding: 'utf8' });
      const [, status, body] = /^(\d{3}) (.*)$/.exec(expected)!;
      const pattern = new RegExp(`^${escape(body!).replaceAll('"…"', `"${ULID}"`)} ${status}$`);
      assert.match(printed, pattern, command);
    }
  } finally {
    gw.child.kill('SIGTERM');
    await gw.exited;
  }
});
