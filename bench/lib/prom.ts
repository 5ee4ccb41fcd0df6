/** Just enough of the Prometheus text format to sum a counter over its series. */

export interface CounterSum {
  value: number;
  /** How many series of the counter were present; 0 means the counter is not exported (yet). */
  series: number;
}

export function sumCounter(exposition: string, name: string): CounterSum {
  let value = 0;
  let series = 0;
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(name)) continue;
    const next = line.charAt(name.length);
    // Skip longer names that merely share the prefix (e.g. name_created).
    if (next !== '{' && next !== ' ') continue;
    // Labels end at the last '}'; the sample value is the first token after them.
    const rest = next === '{' ? line.slice(line.lastIndexOf('}') + 1) : line.slice(name.length);
    const sample = Number(rest.trim().split(/\s+/)[0]);
    if (Number.isFinite(sample)) {
      value += sample;
      series++;
    }
  }
  return { value, series };
}

export async function fetchCounter(metricsUrl: string, name: string): Promise<CounterSum> {
  const res = await fetch(metricsUrl, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET ${metricsUrl} answered ${res.status}`);
  return sumCounter(await res.text(), name);
}
