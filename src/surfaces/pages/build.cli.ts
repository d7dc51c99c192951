// `npm run build`, after tsc: the pages' script and stylesheet, bundled once
// into dist/web-client/, where the compiled surfaces/pages/assets.js looks
// first (the production image has no esbuild).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleClient } from './assets.js';

const out = join(process.argv[2] ?? 'dist', 'web-client');
mkdirSync(out, { recursive: true });
for (const [name, body] of await bundleClient()) writeFileSync(join(out, name), body);
console.log(`pages: bundled into ${out}`);
