import type { ProbeResult } from '../emit/emitter.js';
import { probeFail, TIMEOUT_HINT } from '../emit/probe.js';

/** Something `polku validate --probe` dials: an emitter, or a plugin the module names by address. */
export interface ProbeTarget {
  readonly name: string;
  readonly probe?: ((signal: AbortSignal) => Promise<ProbeResult>) | undefined;
}

export interface ProbeReport {
  /** One line per target, in the order given: `ok   <name>  <detail> (<ms> ms)`, `FAIL …`, `skip …`. */
  readonly lines: string[];
  readonly failed: number;
}

/**
 * Probes every target at once, each under its own `timeoutMs` (its signal aborts then, and a probe
 * that does not stop is not waited for). Results as values: a probe that throws is a FAIL line.
 */
export async function probeTargets(targets: readonly ProbeTarget[], timeoutMs: number): Promise<ProbeReport> {
  const results = await Promise.all(targets.map((t) => probeOne(t, timeoutMs)));
  const lines = results.map(({ name, result, ms }) => {
    if (result === null) return `skip ${name}: no probe`;
    if (result.ok) return `ok   ${name}  ${result.detail} (${ms} ms)`;
    return `FAIL ${name}  ${result.error}${result.hint ? ` (${result.hint})` : ''}`;
  });
  return { lines, failed: results.filter((r) => r.result !== null && !r.result.ok).length };
}

async function probeOne(t: ProbeTarget, timeoutMs: number): Promise<{ name: string; result: ProbeResult | null; ms: number }> {
  if (typeof t.probe !== 'function') return { name: t.name, result: null, ms: 0 };
  const controller = new AbortController();
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<ProbeResult>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve(probeFail(`no answer within ${timeoutMs} ms`, TIMEOUT_HINT));
    }, timeoutMs);
  });
  const probed = Promise.resolve()
    .then(() => t.probe!(controller.signal))
    .catch((err: unknown) => probeFail(`probe failed: ${err instanceof Error ? err.message : String(err)}`));
  const result = await Promise.race([probed, timedOut]);
  clearTimeout(timer);
  return { name: t.name, result, ms: Math.round(performance.now() - started) };
}
