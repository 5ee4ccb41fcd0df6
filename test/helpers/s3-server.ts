// An S3-compatible server per test file: s3rver (npm devDependency) as its own process, files in a
// fresh temp folder, a private port (it binds 0 and prints it), one bucket made at start; and a
// reader that lists and fetches every object with the AWS SDK, as a consumer would.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { ROOT, startProcess, type LineProcess } from './line-process.js';

/** s3rver's fixed credentials: it checks signatures made with these. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface StoredObject {
  key: string;
  contentEncoding: string | undefined;
  /** The body, gunzipped when it was stored gzipped. */
  text: string;
}

export class S3Server {
  readonly endpoint: string;
  readonly client: S3Client;

  private constructor(
    private readonly process: LineProcess,
    private readonly dir: string,
    port: number,
    readonly bucket: string,
  ) {
    this.endpoint = `http://127.0.0.1:${port}`;
    this.client = new S3Client({ endpoint: this.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS });
  }

  static async start(bucket = 'events'): Promise<S3Server> {
    const dir = mkdtempSync(join(tmpdir(), 'polku-s3-'));
    const bin = join(ROOT, 'node_modules', 's3rver', 'bin', 's3rver.js');
    const p = startProcess(process.execPath, [bin, '-d', dir, '-a', '127.0.0.1', '-p', '0', '--silent', '--configure-bucket', bucket]);
    const m = await p.line(/S3rver listening on [\d.]+:(\d+)/);
    return new S3Server(p, dir, Number(m[1]), bucket);
  }

  /** Every object under `prefix`, listed page by page, each fetched whole. */
  async objects(prefix = ''): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }),
      );
      for (const o of page.Contents ?? []) {
        const got = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: o.Key! }));
        const bytes = Buffer.from(await got.Body!.transformToByteArray());
        // s3rver hands back the stored bytes; a gzip member starts 1f 8b.
        const gz = bytes[0] === 0x1f && bytes[1] === 0x8b;
        out.push({ key: o.Key!, contentEncoding: got.ContentEncoding, text: (gz ? gunzipSync(bytes) : bytes).toString('utf8') });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return out;
  }

  async close(): Promise<void> {
    this.client.destroy();
    await this.process.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
