import type { PluginRow } from '../registry/plugin-view.js';
import { adminAddr, adminCall } from './admin.js';
import { flag, printResult, type CliResult, type Command } from './command.js';

/**
 * `polku plugins [--json] [--admin 127.0.0.1:9090]`: the live plugin table of a running gateway,
 * from `GET /admin/plugins` (loopback only: in a pod, `kubectl exec` and run it there). Prints a
 * table, or the JSON answer with `--json`.
 */
export async function pluginTable(admin: string, json: boolean, nowMs = Date.now()): Promise<CliResult> {
  const answer = await adminCall(admin, 'GET', '/admin/plugins');
  if (!answer.ok || json) return answer;
  let rows: PluginRow[];
  try {
    rows = (JSON.parse(answer.output) as { plugins: PluginRow[] }).plugins;
  } catch {
    return { ok: false, output: '', error: `the gateway at ${admin} answered something that is not a plugin table` };
  }
  return { ok: true, output: formatPluginTable(rows, nowMs) };
}

const COLUMNS = ['NAME', 'TYPE', 'ORIGIN', 'ADDRESS', 'ROUTE/SOURCES', 'STATE', 'HEALTH', 'LAST HEARTBEAT', 'LEASE LEFT'] as const;

/** The rows as an aligned text table; a row whose health has something to say gets a note under it. */
export function formatPluginTable(rows: readonly PluginRow[], nowMs: number): string {
  if (rows.length === 0) return 'no plugins';
  const cells = rows.map((r) => [
    r.name,
    r.type,
    r.origin,
    // Only a static component runs in process; a pending Service may have no address yet.
    (r.address || (r.origin === 'static' ? '(in process)' : '-')) + (r.target ? ` → ${r.target}` : ''),
    r.type === 'emitter' ? (r.routeName ?? '-') : r.sources.join(',') || '-',
    r.state,
    r.health,
    r.lastHeartbeat ? `${seconds(nowMs - Date.parse(r.lastHeartbeat))} ago` : '-',
    r.leaseLeftMs === null ? '-' : seconds(r.leaseLeftMs),
  ]);
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = [line(COLUMNS)];
  rows.forEach((r, i) => {
    out.push(line(cells[i]!));
    if (r.health !== 'healthy' && r.healthMessage) out.push(`  └ ${r.service ? `${r.service}: ` : ''}${r.healthMessage}`);
  });
  return out.join('\n');
}

function seconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}

/** `polku plugins`. */
export const pluginsCommand: Command = {
  name: 'plugins',
  summary: 'the live plugin table of a running gateway: static, registered and discovered',
  usage: '[--json] [--admin ADDR]',
  flags: {
    admin: { type: 'string', arg: 'ADDR', help: "the gateway's metrics port, loopback only [POLKU_ADMIN_ADDR or 127.0.0.1:9090]" },
    json: { type: 'boolean', default: false, help: "the gateway's JSON answer instead of a table" },
  },
  async run({ values }) {
    return printResult(await pluginTable(flag(values, 'admin') ?? adminAddr(), values['json'] === true));
  },
};
