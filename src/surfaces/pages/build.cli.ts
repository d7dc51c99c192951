// `npm run build`, after tsc: the pages' script and stylesheet, bundled once
// into dist/web-client/ beside the page registry, where the compiled
// surfaces/pages/assets.js looks (the production image has no esbuild).
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleClient, PAGE_REGISTRY } from './assets.js';

const out = join(process.argv[2] ?? 'dist', 'web-client');
mkdirSync(out, { recursive: true });
for (const [name, body] of await bundleClient()) writeFileSync(join(out, name), body);
copyFileSync(PAGE_REGISTRY, join(out, 'pages.json'));
console.log(`pages: bundled into ${out}`);
