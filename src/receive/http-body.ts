import type { IncomingMessage } from 'node:http';
import { gunzip } from 'node:zlib';

/**
 * Request bodies of the receivers that serve HTTP (OTLP/HTTP, the HTTP front door), read with a
 * bound: nothing past `max` bytes is ever kept, on the wire or while inflating.
 */

/** The body, or 'too-large' once more than `max` bytes arrived (the rest is read and dropped). */
export function readBody(req: IncomingMessage, max: number): Promise<Buffer | 'too-large'> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  return new Promise((resolve, reject) => {
    if (declared > max) {
      req.resume();
      req.once('end', () => resolve('too-large'));
      req.once('error', reject);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > max) {
        over = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(over ? 'too-large' : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.once('error', reject);
  });
}

/** Inflates a gzip body; zlib gives up (and frees what it made) as soon as the output passes `max`. */
export function inflate(body: Buffer, max: number): Promise<Buffer | Error | 'too-large'> {
  return new Promise((resolve) => {
    gunzip(body, { maxOutputLength: max }, (err, out) => {
      if (!err) resolve(out);
      else if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') resolve('too-large');
      else resolve(err);
    });
  });
}

/** A header's media type, lower case, without parameters (`application/json; charset=utf-8` → `application/json`). */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}
