// The chart's dashboard and alerts: rendered by the real helm, checked by the real promtool (from
// Debian's prometheus package, scripts/install-promtool.sh), and every metric they name looked up
// in a running gateway's /metrics.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { scrape } from '../helpers/gateway-harness.js';
import { servePolku } from '../helpers/polku-process.js';
import { CHART, ensureHelm, ofKind, one, ROOT, template, type K8sObject } from './helm.js';

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
}
interface Panel {
  title: string;
  targets: Array<{ expr: string }>;
}

/** promtool's path, or why there is none (a failure under CI). */
function findPromtool(): { path?: string; why?: string } {
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'install-promtool.sh')], { cwd: ROOT, encoding: 'utf8', timeout: 600_000 });
  if (r.status === 0) return { path: r.stdout.trim().split('\n').pop()! };
  return { why: `scripts/install-promtool.sh failed: ${r.stderr.trim()}` };
}

const promtool = findPromtool();
if (!promtool.path && process.env['CI'] !== 'true') console.log(`# skipping the promtool checks: ${promtool.why}`);
const needsPromtool = { skip: !promtool.path && process.env['CI'] !== 'true' ? (promtool.why ?? true) : false };

const dir = mkdtempSync(join(tmpdir(), 'polku-monitoring-'));
let objects: K8sObject[] = [];
let rules: Rule[] = [];
let rulesFile = '';
const dashboard = JSON.parse(readFileSync(join(CHART, 'dashboards', 'polku.json'), 'utf8')) as { panels: Panel[] };
const dashboardExprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));

function runPromtool(args: string[]): { code: number; out: string } {
  if (!promtool.path) throw new Error(`promtool is missing: ${promtool.why}`);
  const r = spawnSync(promtool.path, args, { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

before(async () => {
  ensureHelm();
  objects = await template({ valuesFiles: ['ci/monitoring-values.yaml'] });
  const groups = (one(objects, 'PrometheusRule')['spec'] as { groups: Array<{ name: string; rules: Rule[] }> }).groups;
  rules = groups.flatMap((g) => g.rules);
  rulesFile = join(dir, 'rules.yaml');
  writeFileSync(rulesFile, stringify({ groups }));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('chart: monitoring (dashboard and PrometheusRule)', () => {
  test('off by default; on, a labelled dashboard ConfigMap holding dashboards/polku.json and a labelled PrometheusRule', async () => {
    const defaults = await template();
    assert.equal(ofKind(defaults, 'PrometheusRule').length, 0);
    assert.equal(ofKind(defaults, 'ConfigMap').filter((c) => c.metadata.name.endsWith('-dashboard')).length, 0);
    const cm = ofKind(objects, 'ConfigMap').find((c) => c.metadata.name === 'polku-dashboard');
    assert.ok(cm);
    assert.equal(cm.metadata.labels?.['grafana_dashboard'], '1');
    assert.deepEqual(JSON.parse((cm['data'] as Record<string, string>)['polku.json']!), dashboard);
    assert.equal(one(objects, 'PrometheusRule').metadata.labels?.['release'], 'kube-prometheus-stack');
    assert.deepEqual(
      rules.map((r) => r.alert),
      [
        'PolkuEventsLost',
        'PolkuEventsRefused',
        'PolkuEmitterLagging',
        'PolkuDeadLetters',
        'PolkuPluginChurn',
        'PolkuBufferFilling',
        'PolkuEmitterUnhealthy',
      ],
    );
  });

  test('thresholds come from values', async () => {
    const custom = await template({
      valuesFiles: ['ci/monitoring-values.yaml'],
      values: { monitoring: { prometheusRule: { thresholds: { lagSeconds: 42, bufferFillRatio: 0.5 } } } },
    });
    const exprs = (one(custom, 'PrometheusRule')['spec'] as { groups: Array<{ rules: Rule[] }> }).groups[0]!.rules.map((r) => r.expr);
    assert.ok(exprs.some((e) => e.endsWith('(polku_emitter_lag_seconds) > 42')));
    assert.ok(exprs.some((e) => e.endsWith('(polku_buffer_events / polku_buffer_capacity_events) > 0.5')));
  });

  test('promtool check rules: every alert expression parses', needsPromtool, () => {
    const r = runPromtool(['check', 'rules', rulesFile]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /SUCCESS: 7 rules found/);
  });

  test("promtool check rules: every dashboard query parses (Grafana's $__rate_interval as 5m)", needsPromtool, () => {
    const file = join(dir, 'dashboard-exprs.yaml');
    const recording = dashboardExprs.map((expr, i) => ({
      record: `polku:dashboard_query_${i}`,
      expr: expr.replaceAll('$__rate_interval', '5m'),
    }));
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: recording }] }));
    const r = runPromtool(['check', 'rules', file]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`SUCCESS: ${dashboardExprs.length} rules found`));
  });

  test('promtool test rules: PolkuBufferFilling and PolkuEventsLost fire when they should, and only then', needsPromtool, () => {
    const file = join(dir, 'alerts.test.yaml');
    const at = (pod: string, extra = '') => `{namespace="polku",pod="${pod}"${extra}}`;
    writeFileSync(
      file,
      stringify({
        rule_files: [rulesFile],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: [
              // p1 at 90 % for 10 minutes; p2 at 50 %; p3 at 90 % for only 3 minutes.
              { series: `polku_buffer_events${at('p1')}`, values: '900x10' },
              { series: `polku_buffer_capacity_events${at('p1')}`, values: '1000x10' },
              { series: `polku_buffer_events${at('p2')}`, values: '500x10' },
              { series: `polku_buffer_capacity_events${at('p2')}`, values: '1000x10' },
              { series: `polku_buffer_events${at('p3')}`, values: '0x7 900x3' },
              { series: `polku_buffer_capacity_events${at('p3')}`, values: '1000x10' },
              // p1 fails 1 event/s to its emitter; p2 only filters (intended, never an alert).
              { series: `polku_events_dropped_total${at('p1', ',reason="emit_failed"')}`, values: '0+60x10' },
              { series: `polku_events_dropped_total${at('p2', ',reason="filtered"')}`, values: '0+600x10' },
            ],
            alert_rule_test: [
              {
                eval_time: '10m',
                alertname: 'PolkuBufferFilling',
                exp_alerts: [
                  {
                    exp_labels: { severity: 'warning', namespace: 'polku', pod: 'p1' },
                    exp_annotations: {
                      summary: 'POLKU p1 buffer is 90% full',
                      description: 'Emitters do not keep up; when it is full the overflow policy refuses, evicts or blocks.',
                    },
                  },
                ],
              },
              {
                eval_time: '10m',
                alertname: 'PolkuEventsLost',
                exp_alerts: [
                  {
                    exp_labels: { severity: 'critical', namespace: 'polku', pod: 'p1', reason: 'emit_failed' },
                    exp_annotations: {
                      summary: 'POLKU p1 loses accepted events (emit_failed)',
                      description: "1 events/s dropped with reason emit_failed; see polku_events_dropped_total and the emitter's logs.",
                    },
                  },
                ],
              },
              // Before `for` has passed, nothing fires.
              { eval_time: '4m', alertname: 'PolkuEventsLost', exp_alerts: [] },
            ],
          },
        ],
      }),
    );
    const r = runPromtool(['test', 'rules', file]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /SUCCESS/);
  });

  test('every metric the alerts and the dashboard name is one a running gateway exports', { timeout: 60_000 }, async () => {
    const names = new Set(
      [...rules.map((r) => r.expr), ...dashboardExprs].flatMap((e) => [...e.matchAll(/\bpolku_[a-z0-9_]+\b/g)].map((m) => m[0])),
    );
    assert.ok(names.size >= 25, `${names.size} metric names found`);
    // Durable mode (lag, dead letters, the log) with the plugin registry on (churn).
    const dataDir = mkdtempSync(join(tmpdir(), 'polku-monitoring-data-'));
    const gw = await servePolku([], { POLKU_DURABLE: 'true', POLKU_DATA_DIR: dataDir, POLKU_REGISTRY: 'on' });
    try {
      const text = await scrape(gw.metricsPort);
      const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
      const missing = [...names].filter((n) => {
        if (types.has(n)) return false;
        const base = /^(.*)_(bucket|sum|count)$/.exec(n)?.[1];
        return !(base && types.get(base) === 'histogram');
      });
      assert.deepEqual(missing, []);
    } finally {
      gw.child.kill('SIGTERM');
      await gw.exited;
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
