// The cookie-jar user agent the relying-party tests and the OpenID bench use to
// "be the browser": what it keeps, what it sends, how it follows and submits.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseForms, UserAgent } from '../helpers/oidc-peers.js';

let server: Server;
let base: string;
const seen: { method: string; url: string; cookie: string; origin?: string; body: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, cookie: req.headers.cookie ?? '', origin: req.headers.origin, body });
      const u = new URL(req.url!, 'http://x');
      if (u.pathname === '/set') {
        res.setHeader('set-cookie', ['root=1; Path=/; HttpOnly', 'scoped=2; Path=/app', 'gone=3; Path=/']);
        return res.end('ok');
      }
      if (u.pathname === '/unset') {
        res.setHeader('set-cookie', 'gone=; Path=/; Max-Age=0');
        return res.end('ok');
      }
      if (u.pathname === '/form') {
        res.setHeader('content-type', 'text/html');
        return res.end(
          '<form id="f" method="post" action="/submit?x=1&amp;y=2"><input type="hidden" name="xsrf" value="a&quot;b">' +
            '<input name="login"><input type="checkbox" name="remember"></form>' +
            '<button type="submit" form="f" name="choice" value="yes">Yes, go</button>',
        );
      }
      if (u.pathname === '/submit') {
        res.writeHead(303, { location: '/landed' });
        return res.end();
      }
      if (u.pathname === '/hop') {
        res.writeHead(302, { location: 'http://127.0.0.1:1/never?code=abc' });
        return res.end();
      }
      res.end(`page ${u.pathname}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('UserAgent', () => {
  it('keeps cookies per host and path, forgets expired ones, and sends them back', async () => {
    const ua = new UserAgent();
    await ua.get(`${base}/set`);
    expect(ua.cookieHeader(`${base}/`)).toBe('root=1; gone=3');
    expect(ua.cookieHeader(`${base}/app/page`)).toBe('scoped=2; root=1; gone=3');
    expect(ua.cookieHeader(`${base}/application`)).toBe('root=1; gone=3');
    // A cookie's scope is the host, not the port (RFC 6265 8.5).
    expect(ua.cookieHeader('http://127.0.0.1:1/')).toBe('root=1; gone=3');
    expect(ua.cookieHeader('http://localhost:1/')).toBe('');
    await ua.get(`${base}/unset`);
    await ua.get(`${base}/app/x`);
    expect(seen.at(-1)!.cookie).toBe('scoped=2; root=1');
  });

  it('submits a form with its fields, the typed values and the chosen button, with the Origin, and follows a 303 as a GET', async () => {
    const ua = new UserAgent();
    const form = await ua.get(`${base}/form`);
    const landed = await ua.submit(form, { login: 'ada' }, { button: /yes/i });
    expect(landed.url).toBe(`${base}/landed`);
    expect(landed.text).toBe('page /landed');
    const post = seen.find((s) => s.url === '/submit?x=1&y=2')!;
    expect(post.method).toBe('POST');
    expect(post.origin).toBe(base);
    expect(Object.fromEntries(new URLSearchParams(post.body))).toEqual({ xsrf: 'a"b', login: 'ada', choice: 'yes' });
    expect(seen.at(-1)).toMatchObject({ method: 'GET', url: '/landed' });
  });

  it('stops before a redirect it is told not to request', async () => {
    const ua = new UserAgent();
    const page = await ua.get(`${base}/hop`, { stopAt: (u) => u.port === '1' });
    expect(page.url).toBe('http://127.0.0.1:1/never?code=abc');
    expect(page.status).toBe(302);
  });

  it('parses unchecked checkboxes out and buttons tied by form=id in', () => {
    const [f] = parseForms(
      '<form id="a"><input type="checkbox" name="c" checked><input type="radio" name="r" value="1"></form><input type="submit" form="a" value="Go">',
    );
    expect(f!.fields).toEqual([['c', 'on']]);
    expect(f!.buttons).toEqual([{ name: '', value: 'Go', text: 'Go' }]);
  });
});
