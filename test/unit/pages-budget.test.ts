// The hosted pages stay small and strict: their one script under 150 kB
// gzipped, and every page served with a CSP that allows nothing but this
// origin (no inline script, never framed), with no inline script in its HTML.
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bundleClient, hostedPages } from '../../src/surfaces/pages/assets.js';
import { useTestApp } from '../helpers/use-app.js';

const BUDGET_GZIPPED = 150 * 1024;

describe('the hosted pages', () => {
  it(`bundle to one script of under ${BUDGET_GZIPPED / 1024} kB gzipped, and a stylesheet`, async () => {
    const files = await bundleClient();
    expect([...files.keys()].sort()).toEqual(['app.css', 'app.js']);
    const js = files.get('app.js')!;
    const gzipped = gzipSync(js, { level: 9 }).length;
    expect(gzipped, `app.js: ${js.length} bytes, ${gzipped} gzipped`).toBeLessThan(BUDGET_GZIPPED);
    expect(gzipSync(files.get('app.css')!).length).toBeLessThan(10 * 1024);
  });

  describe('served by the app', () => {
    const app = useTestApp('pglite');

    it.each(Object.keys(hostedPages()))('%s answers with a strict CSP and no inline script', async (path) => {
      const res = await app.t.request(path);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      const csp = (res.headers.get('content-security-policy') ?? '').split(';').map((d) => d.trim());
      expect(csp).toEqual(expect.arrayContaining(["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"]));
      expect(csp.join(';')).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      const html = await res.text();
      const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
      expect(scripts.length).toBeGreaterThan(0);
      for (const [, attrs, body] of scripts) {
        expect(attrs).toMatch(/\ssrc="\/assets\/app\.js"/);
        expect(body!.trim()).toBe('');
      }
      // No inline event handlers or styles either (the CSP would block them).
      expect(html).not.toMatch(/\son[a-z]+=|\sstyle=|<style/i);
    });

    it('serves the script and stylesheet from this origin, with an ETag', async () => {
      for (const [name, type] of [
        ['app.js', /^text\/javascript/],
        ['app.css', /^text\/css/],
      ] as const) {
        const res = await app.t.request(`/assets/${name}`);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(type);
        const etag = res.headers.get('etag')!;
        expect((await app.t.request(`/assets/${name}`, { headers: { 'if-none-match': etag } })).status).toBe(304);
      }
    });
  });
});
