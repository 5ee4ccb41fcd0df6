// What the example-plugin tests share beyond the process helpers (test/helpers/line-process.ts).
import { existsSync, readFileSync } from 'node:fs';
import type { ServiceError } from '@grpc/grpc-js';

/** The complete JSON lines of `file` so far (a line still being written is left for later). */
export function jsonLines(file: string): Array<Record<string, any>> {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** A unary call of a generated grpc-js client as a promise. */
export const unary = <Req, Res>(call: (req: Req, cb: (err: ServiceError | null, res: Res) => void) => unknown, req: Req): Promise<Res> =>
  new Promise((resolve, reject) => call(req, (err, res) => (err ? reject(err) : resolve(res))));

/** Where a plugin started with `--port 0` says it listens. */
export const LISTENING = /listening on 127\.0\.0\.1:(\d+)/;
