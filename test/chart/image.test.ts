// The container image. No Docker engine runs here, so the image cannot be built: the Dockerfile is
// checked as text against what the chart relies on, and the one trick it plays (a pipeline module
// mounted outside the app importing 'polku') is reproduced with the same directory layout.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { CHART, ROOT } from './helm.js';

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const dockerignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8');

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function instructions(text: string): { op: string; args: string }[] {
  const joined = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => {
      const m = /^(\S+)\s*(.*)$/.exec(l)!;
      return { op: m[1]!.toUpperCase(), args: m[2]! };
    });
}

/** The instructions of each stage, from its FROM on. */
function stages(text: string): { from: string; body: { op: string; args: string }[] }[] {
  const out: { from: string; body: { op: string; args: string }[] }[] = [];
  for (const ins of instructions(text)) {
    if (ins.op === 'FROM') out.push({ from: ins.args, body: [] });
    else if (out.length > 0) out[out.length - 1]!.body.push(ins);
  }
  return out;
}

describe('image: Dockerfile', () => {
  const all = stages(dockerfile);
  const runtime = all[all.length - 1]!;
  const of = (stage: { body: { op: string; args: string }[] }, op: string) => stage.body.filter((i) => i.op === op).map((i) => i.args);

  test('three stages on node:22-bookworm-slim (a supported LTS line): build (npm ci, npm run build), deps, runtime', () => {
    assert.match(dockerfile, /^ARG NODE_IMAGE=node:22-bookworm-slim$/m);
    assert.deepEqual(
      all.map((s) => s.from),
      ['${NODE_IMAGE} AS build', '${NODE_IMAGE} AS deps', '${NODE_IMAGE}'],
    );
    const build = of(all[0]!, 'RUN').join('\n');
    assert.match(build, /npm ci --ignore-scripts/);
    assert.match(build, /npm run build/);
  });

  test('the runtime gets production dependencies only, installed without scripts, and dist/ from the build stage', () => {
    const deps = of(all[1]!, 'RUN').join('\n');
    assert.match(deps, /npm ci --omit=dev --ignore-scripts/);
    assert.doesNotMatch(of(runtime, 'RUN').join('\n'), /npm (ci|install)/);
    const copies = of(runtime, 'COPY');
    assert.ok(copies.includes('--from=deps /app/node_modules ./node_modules'));
    assert.ok(copies.includes('--from=build /src/dist ./dist'));
    assert.ok(copies.includes('bin ./bin'));
    assert.ok(copies.includes('proto ./proto'));
    assert.ok(copies.includes('package.json ./'));
    // tsx compiles a TypeScript pipeline module at run time: it must be a production dependency.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.ok(pkg.dependencies['tsx'], 'tsx is in dependencies');
  });

  test("runs as uid 10001 (the chart's runAsUser) under tini, serving 50051 and 9090", () => {
    assert.deepEqual(of(runtime, 'USER'), ['10001:10001']);
    const values = parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as { securityContext: { runAsUser: number } };
    assert.equal(values.securityContext.runAsUser, 10001);
    assert.match(of(runtime, 'RUN').join('\n'), /apt-get install -y --no-install-recommends tini/);
    assert.deepEqual(JSON.parse(of(runtime, 'ENTRYPOINT')[0]!), ['tini', '--', 'node', 'bin/polku.js']);
    assert.deepEqual(JSON.parse(of(runtime, 'CMD')[0]!), ['serve']);
    assert.deepEqual(of(runtime, 'EXPOSE'), ['50051 9090 4317 4318 8080']);
  });

  test('memory and tsx settings: NODE_OPTIONS sized for a 256 MiB container without discovery, no tsx disk cache', () => {
    const env = of(runtime, 'ENV').join(' ');
    assert.match(env, /NODE_OPTIONS="--max-old-space-size=128"/);
    assert.match(env, /TSX_DISABLE_CACHE=1/);
    assert.match(env, /NODE_ENV=production/);
  });

  test('.dockerignore admits only what the Dockerfile copies from the context', () => {
    const rules = dockerignore
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    assert.equal(rules[0], '**', 'everything is excluded first');
    const admitted = rules.slice(1).map((r) => r.replace(/^!/, '').replace(/\/\*\*$/, ''));
    const fromContext = all
      .flatMap((s) => of(s, 'COPY'))
      .filter((c) => !c.startsWith('--from='))
      .flatMap((c) => c.split(/\s+/).slice(0, -1));
    for (const src of fromContext) assert.ok(admitted.includes(src), `${src} is copied, so .dockerignore must admit it`);
    for (const a of admitted) assert.ok(existsSync(join(ROOT, a)), `${a} exists`);
  });
});

describe('image: a pipeline module mounted at /etc/polku imports polku', () => {
  const module = (parseYaml(readFileSync(join(CHART, 'ci', 'pipeline-module-values.yaml'), 'utf8')) as { pipeline: { module: string } })
    .pipeline.module;

  const roots: string[] = [];
  after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));
  /** A root laid out like the image's: <root>/node_modules/polku -> the app, the module in <root>/etc/polku. */
  const imageRoot = (withLink: boolean) => {
    const root = mkdtempSync(join(tmpdir(), 'polku-image-'));
    roots.push(root);
    mkdirSync(join(root, 'etc', 'polku'), { recursive: true });
    if (withLink) {
      mkdirSync(join(root, 'node_modules'));
      symlinkSync(ROOT, join(root, 'node_modules', 'polku'));
    }
    const file = join(root, 'etc', 'polku', 'polku.config.ts');
    writeFileSync(file, module);
    return file;
  };

  const freePort = () =>
    new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as AddressInfo;
        srv.close(() => resolve(port));
      });
    });

  /** `polku serve` as the pod runs it: POLKU_CONFIG names the module, the rest from the environment. */
  const serve = async (configPath: string) => {
    const [grpcPort, metricsPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'polku.js'), 'serve'], {
      cwd: ROOT,
      env: {
        PATH: process.env['PATH'] ?? '',
        NODE_OPTIONS: '--max-old-space-size=128',
        TSX_DISABLE_CACHE: '1',
        POLKU_CONFIG: configPath,
        POLKU_GRPC_ADDR: `127.0.0.1:${grpcPort}`,
        POLKU_METRICS_ADDR: `127.0.0.1:${metricsPort}`,
        POLKU_OTLP_GRPC_ADDR: '127.0.0.1:0',
        POLKU_OTLP_HTTP_ADDR: '127.0.0.1:0',
        POLKU_HTTP_ADDR: '127.0.0.1:0',
        POLKU_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
    return { child, exited, output: () => out, metricsPort };
  };

  test("with the image's /node_modules/polku link, the gateway loads the chart's example module, gets ready, and drains on SIGTERM", async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'index.js')), 'dist/ is built (npm ci runs the build)');
    const g = await serve(imageRoot(true));
    try {
      const deadline = Date.now() + 30_000;
      let ready = false;
      while (!ready && Date.now() < deadline) {
        const exitedEarly = await Promise.race([g.exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 100))]);
        assert.equal(exitedEarly, false, `the gateway exited:\n${g.output()}`);
        ready = await fetch(`http://127.0.0.1:${g.metricsPort}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
      }
      assert.ok(ready, `/readyz answered 200:\n${g.output()}`);
      assert.match(g.output(), /"middleware":\["no-debug"\]/, "the module's pipeline was loaded");
    } finally {
      g.child.kill('SIGTERM');
    }
    assert.equal(await g.exited, 0, g.output());
    assert.match(g.output(), /gateway stopped/);
  });

  test('without the link the same module cannot resolve polku (so the link is what makes it work)', async () => {
    const g = await serve(imageRoot(false));
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([g.exited, new Promise<number>((r) => (timer = setTimeout(() => r(-1), 30_000)))]);
    clearTimeout(timer);
    if (code === -1) g.child.kill('SIGKILL');
    assert.notEqual(code, 0);
    assert.match(g.output(), /POLKU_ERR_CONFIG_INVALID/);
    assert.match(g.output(), /Cannot find (package|module) 'polku'|ERR_MODULE_NOT_FOUND/);
  });
});
