// /docs is Swagger UI served from this origin only: our own page under a strict
// CSP, the package's files from an allow-list, nothing from a CDN.
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helpers/use-app.js';

describe('API reference at /docs', () => {
  const { call } = useTestApp('pglite');

  const directives = (csp: string | null) =>
    new Map(
      (csp ?? '')
        .split(';')
        .map((d) => d.trim().split(/\s+/))
        .filter((d) => d[0])
        .map(([name, ...values]) => [name!, values]),
    );

  const referencedUrls = (html: string) => [...html.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/g)].map((m) => m[1]!);

  it('serves an HTML page under a strict Content-Security-Policy that forbids framing', async () => {
    const res = await call('GET', '/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const csp = directives(res.headers.get('content-security-policy'));
    expect(csp.get('default-src')).toEqual(["'self'"]);
    expect(csp.get('script-src')).toEqual(["'self'"]);
    expect(csp.get('style-src')).not.toContain("'unsafe-inline'");
    expect(csp.get('object-src')).toEqual(["'none'"]);
    expect(csp.get('base-uri')).toEqual(["'none'"]);
    expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
    for (const values of csp.values()) {
      for (const v of values) expect(v, 'no scheme, host or wildcard source but data: images').toMatch(/^('self'|'none'|data:)$/);
    }
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('cache-control')).toBe('no-cache');
  });

  it('loads only same-origin /docs/assets/ files, with no inline script or style', async () => {
    const html = (await call('GET', '/docs')).text;
    const urls = referencedUrls(html);
    // The one other link is the no-script fallback to the document itself.
    expect(urls.filter((u) => !u.startsWith('/docs/assets/'))).toEqual(['/openapi.json']);
    for (const url of urls) expect(url).toMatch(/^\/(docs\/assets\/[\w.-]+|openapi\.json)$/);
    expect(html).not.toMatch(/https?:/i);
    expect(html).not.toMatch(/["'(]\/\//);
    expect(html).not.toMatch(/<style/i);
    expect(html).not.toMatch(/\sstyle\s*=/i);
    expect(html).not.toMatch(/\son\w+\s*=/i);
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.map((s) => s[1]!.match(/src="([^"]+)"/)?.[1])).toEqual(['/docs/assets/swagger-ui-bundle.js', '/docs/assets/init.js']);
    for (const s of scripts) expect(s[2]!.trim(), 'script body').toBe('');
    expect(urls).toContain('/docs/assets/swagger-ui.css');
  });

  it('serves each file the page references, with its content type, cacheable', async () => {
    const html = (await call('GET', '/docs')).text;
    const types: Record<string, string> = { css: 'text/css', js: 'text/javascript', png: 'image/png' };
    const assets = referencedUrls(html).filter((u) => u.startsWith('/docs/assets/'));
    expect(assets.length).toBeGreaterThanOrEqual(3);
    for (const url of assets) {
      const res = await call('GET', url);
      expect(res.status, url).toBe(200);
      expect(res.headers.get('content-type'), url).toContain(types[url.split('.').pop()!]!);
      expect(res.headers.get('cache-control'), url).toBe('public, max-age=3600');
      expect(res.headers.get('x-content-type-options'), url).toBe('nosniff');
      expect(res.text.length, url).toBeGreaterThan(0);
    }
  });

  it('starts Swagger UI on our own document, from our own script', async () => {
    const init = await call('GET', '/docs/assets/init.js');
    expect(init.text).toContain('SwaggerUIBundle(');
    expect(init.text).toContain("url: '/openapi.json'");
    expect(init.text).toContain("dom_id: '#swagger-ui'");
    expect((await call('GET', '/docs/assets/swagger-ui-bundle.js')).text).toContain('SwaggerUIBundle');
  });

  it('serves nothing outside its allow-list: other package files, traversal and unknown names are 404 problems', async () => {
    for (const path of [
      '/docs/assets/../package.json',
      '/docs/assets/..%2fpackage.json',
      '/docs/assets/%2e%2e%2f%2e%2e%2fpackage.json',
      '/docs/assets/package.json',
      '/docs/assets/index.html',
      '/docs/assets/swagger-ui-bundle.js.map',
      '/docs/assets/nope.js',
      '/docs/assets/__proto__',
      '/docs/assets/constructor',
      '/docs/assets/',
      '/docs/assets/sub/swagger-ui.css',
    ]) {
      const res = await call('GET', path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toContain('application/problem+json');
      expect(res.body.code, path).toBe('not_found');
    }
  });
});
