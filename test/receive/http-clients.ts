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
