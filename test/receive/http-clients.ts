// Small clients of the HTTP front door for test/receive/http-*.test.ts.
import type { HttpGateway } from '../helpers/polku-process.js';

export interface Answer {
  status: number;
  headers: Headers;
  body: { accepted: string[]; errors: Array<{ index?: number; id?: string; code: string; message: string }> };
}

/** POSTs `body` to /v1/events; JSON content type unless `headers` say otherwise. */
export async function post(gw: HttpGateway, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${gw.httpUrl}/v1/events`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body,
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Answer['body'] };
}

/** Resolves once `check` holds, or fails naming `what` after `limitMs`. */
export async function until(check: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The value of one sample of the Prometheus text (`name` or `name{labels}` exactly as exported), 0 when absent. */
export function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
