// Regenerates deploy/polku.yaml from the chart's defaults:
//   node --import tsx test/chart/render-deploy.ts
// test/chart/deploy.test.ts fails while the committed file differs from this output.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureHelm, renderDeployManifest, ROOT } from './helm.js';

ensureHelm();
const file = join(ROOT, 'deploy', 'polku.yaml');
writeFileSync(file, await renderDeployManifest());
console.log(`wrote ${file}`);
