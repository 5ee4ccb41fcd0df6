// bench:sinks: the gateway with one S3Emitter (gzip on) writing to s3rver; endpoint from the env.
import { hub, S3Emitter } from '../../src/index.js';

export default hub()
  .emitter(
    new S3Emitter({
      endpoint: process.env['POLKU_BENCH_S3_ENDPOINT']!,
      bucket: 'bench',
      prefix: 'gateway',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    }),
  )
  .delivery({ batchSize: Number(process.env['POLKU_BENCH_BATCH'] ?? 500) });
