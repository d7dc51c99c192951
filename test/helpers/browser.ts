// Real-browser tests of the hosted pages: the app served on a real socket at
// http://localhost:<port> (PUBLIC_URL and the WebAuthn RP ID match the page's
// origin), a test SMTP server for its mail, a clock the tests can move for
// TOTP codes, and headless Chromium (playwright-core). Every page opened here
// records what a user would never see but must not happen: script errors,
// uncaught exceptions, CSP violations and requests to any other origin;
// expectClean() asserts there were none.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { serve } from '@hono/node-server';
import { type Browser, type BrowserContext, type CDPSession, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import type { AppOptions } from '../../src/app.js';
import { createTestApp, type TestApp } from './app.js';
import { client, type Call } from './http.js';
import { openDatabase } from './services.js';
import { TestSmtp } from './smtp.js';
import { STEP_MS } from './totp.js';

const DEBIAN_CHROMIUM = '/usr/bin/chromium';

/**
 * The Chromium the browser tests drive: CHROMIUM_PATH when set; else Debian's
 * /usr/bin/chromium when installed; else the one inside the @sparticuz/chromium
 * dev dependency (CHROMIUM_PATH=bundled picks that one even when the others exist).
 */
export function chromiumPath(): Promise<string> {
  const env = process.env.CHROMIUM_PATH;
  if (env && env !== 'bundled') return Promise.resolve(env);
  if (env !== 'bundled' && existsSync(DEBIAN_CHROMIUM)) return Promise.resolve(DEBIAN_CHROMIUM);
  bundled ??= unpackBundledChromium();
  return bundled;
}
let bundled: Promise<string> | undefined;

/**
 * @sparticuz/chromium ships a headless Chromium brotli-packed in the package;
 * its executablePath() unpacks it into the temp directory. That is done here
 * once per package version, in a child process whose TMPDIR is a fresh staging
 * directory renamed into place when complete: test files in parallel workers (or
 * two test runs) never see a half-written binary, and later runs reuse it.
 */
async function unpackBundledChromium(): Promise<string> {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve('@sparticuz/chromium');
  } catch {
    throw new Error(
      `no Chromium for the browser tests: none at ${DEBIAN_CHROMIUM}, CHROMIUM_PATH is not set, and the @sparticuz/chromium dev dependency is not installed (npm install)`,
    );
  }
  // The package's own package.json (its build directories have package.json files of their own).
  let version: string | undefined;
  for (let dir = dirname(entry); version === undefined && dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === '@sparticuz/chromium') version = pkg.version;
  }
  if (!version) throw new Error(`no package.json of @sparticuz/chromium above ${entry}`);
  const dir = join(tmpdir(), `auth-system-chromium-${version}`);
  const binary = join(dir, 'chromium');
  if (existsSync(binary)) return binary;
  const staging = await mkdtemp(`${dir}.unpacking-`);
  try {
    const script = `const { default: c } = await import('@sparticuz/chromium'); process.stdout.write(await c.executablePath());`;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--input-type=module', '-e', script],
        { cwd: process.cwd(), env: { ...process.env, TMPDIR: staging } },
        (err, stdout, stderr) =>
          err ? reject(new Error(`unpacking @sparticuz/chromium ${version} failed: ${stderr || err.message}`)) : resolve(stdout),
      ),
    );
    if (out !== join(staging, 'chromium')) throw new Error(`@sparticuz/chromium ${version} unpacked to ${out}, not into ${staging}`);
    await rename(staging, dir).catch((err) => {
      // Another test file (or run) put it in place first.
      if (!existsSync(binary)) throw err;
    });
    return binary;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: await chromiumPath(),
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A clock the tests move: real time plus a skew (a step ahead gives a TOTP code no earlier request used). */
export function movableClock() {
  let skew = 0;
  return {
    now: () => Date.now() + skew,
    nextStep() {
      skew += STEP_MS;
    },
    /** Move ahead by `ms` (e.g. an hour, for traffic in several hours of the statistics' timeline). */
    advance(ms: number) {
      skew += ms;
    },
  };
}
export type MovableClock = ReturnType<typeof movableClock>;

export type ServedApp = {
  t: TestApp;
  /** In-process API calls (app.request), for setting up and checking what the pages did. */
  call: Call;
  /** http://localhost:<port>: the pages' origin and PUBLIC_URL. */
  origin: string;
  smtp: TestSmtp;
  clock: MovableClock;
  stop: () => Promise<void>;
};

export type ServeOptions = {
  /** Config overrides on top of testConfig's (and of PUBLIC_URL and SMTP_URL, set here). */
  overrides?: Record<string, string>;
  app?: AppOptions;
};

/**
 * The app on PGlite, served by @hono/node-server on a free loopback port. The
 * socket is bound first (port 0) and the app made afterwards, so PUBLIC_URL can
 * name the port without a pick-then-bind race.
 */
export async function startServedApp(opts: ServeOptions = {}): Promise<ServedApp> {
  const smtp = await new TestSmtp().start();
  const clock = movableClock();
  let app: TestApp | undefined;
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve(
      {
        fetch: (req, env) => (app ? app.app.fetch(req, env) : new Response('starting', { status: 503 })),
        port: 0,
        hostname: '127.0.0.1',
      },
      () => resolve(s),
    );
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `http://localhost:${port}`;
  const db = await openDatabase('pglite');
  app = await createTestApp({
    database: db.database,
    clock: clock.now,
    overrides: { PUBLIC_URL: origin, SMTP_URL: smtp.url, MAIL_PER_ADDRESS_PER_HOUR: '100', ...opts.overrides },
    app: { mail: { pollMs: 50, baseBackoffMs: 50, maxBackoffMs: 200 }, ...opts.app },
  });
  const t = app;
  return {
    t,
    call: client(t),
    origin,
    smtp,
    clock,
    stop: async () => {
      await new Promise((r) => server.close(r));
      await t.stop();
      await db.dispose();
      await smtp.stop();
    },
  };
}

/** What a page did that it must not: each list is empty on a healthy page. */
export type Problems = {
  /** console.error and the like (the browser's "Failed to load resource" lines are in `http` instead). */
  consoleErrors: string[];
  /** Uncaught exceptions and unhandled rejections. */
  pageErrors: string[];
  /** Content-Security-Policy violations (securitypolicyviolation events). */
  csp: string[];
  /** Requests to anything but the app's origin. */
  foreign: string[];
};

export type Tab = {
  page: Page;
  context: BrowserContext;
  problems: Problems;
  /** API answers of 400 or more, as "METHOD /path STATUS": a page may expect some (a wrong password is a 401). */
  http: string[];
  /** A CDP virtual authenticator on this tab, made on first use. */
  authenticator: () => Promise<{ cdp: CDPSession; authenticatorId: string }>;
};

const RECORD_CSP = () => {
  document.addEventListener('securitypolicyviolation', (e) => {
    const report = (window as unknown as { __reportCsp?: (s: string) => void }).__reportCsp;
    report?.(`${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
  });
};

/** A new browser context (its own sessionStorage) with one page, recording its problems. */
export async function openTab(
  browser: Browser,
  served: Pick<ServedApp, 'origin'>,
  opts: {
    viewport?: { width: number; height: number };
    /** Origins the test serves itself (relying parties on other ports): requests to them are not foreign. */
    otherOrigins?: string[];
  } = {},
): Promise<Tab> {
  const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1280, height: 900 }, baseURL: served.origin });
  context.setDefaultTimeout(10_000);
  const problems: Problems = { consoleErrors: [], pageErrors: [], csp: [], foreign: [] };
  const http: string[] = [];
  await context.exposeBinding('__reportCsp', ({ page }, text: string) => problems.csp.push(`${page.url()}: ${text}`));
  await context.addInitScript(RECORD_CSP);
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    // Chromium logs every answer of 400+ to fetch() as an error line; those are recorded (and judged) in `http`.
    if (/^Failed to load resource: the server responded with a status of \d+/.test(text)) return;
    problems.consoleErrors.push(`${page.url()}: ${text}`);
    if (/Content Security Policy/i.test(text)) problems.csp.push(`${page.url()}: ${text}`);
  });
  page.on('pageerror', (err) => problems.pageErrors.push(`${page.url()}: ${err.stack ?? err.message}`));
  context.on('request', (req) => {
    const url = new URL(req.url());
    // data: and blob: URLs never leave the browser (the favicon is data:, the export a blob:).
    if (url.protocol === 'data:' || url.protocol === 'blob:') return;
    if (url.origin !== served.origin && !opts.otherOrigins?.includes(url.origin)) problems.foreign.push(`${req.method()} ${req.url()}`);
  });
  context.on('response', (res) => {
    const url = new URL(res.url());
    if (url.origin === served.origin && res.status() >= 400) http.push(`${res.request().method()} ${url.pathname} ${res.status()}`);
  });
  let authenticator: { cdp: CDPSession; authenticatorId: string } | undefined;
  return {
    page,
    context,
    problems,
    http,
    authenticator: async () => {
      if (authenticator) return authenticator;
      const cdp = await context.newCDPSession(page);
      await cdp.send('WebAuthn.enable');
      const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: {
          protocol: 'ctap2',
          transport: 'internal',
          hasResidentKey: true,
          hasUserVerification: true,
          isUserVerified: true,
          automaticPresenceSimulation: true,
        },
      });
      authenticator = { cdp, authenticatorId };
      return authenticator;
    },
  };
}

/**
 * Asserts the tab had no script errors, exceptions, CSP violations or foreign
 * requests, and that its failed API answers were exactly `http` (in any order).
 */
export function expectClean(tab: Tab, opts: { http?: string[] } = {}): void {
  expect(tab.problems).toEqual({ consoleErrors: [], pageErrors: [], csp: [], foreign: [] });
  expect([...tab.http].sort()).toEqual([...(opts.http ?? [])].sort());
}

export type BrowserApp = ServedApp & {
  browser: Browser;
  /** A fresh tab (own context) on `path`, loaded. */
  open: (path: string, opts?: { viewport?: { width: number; height: number } }) => Promise<Tab>;
};

/** One app and one browser for the calling describe block (beforeAll/afterAll); each tab is closed at the end too. */
export function useBrowserApp(opts: ServeOptions | (() => ServeOptions) = {}): BrowserApp {
  let served: ServedApp | undefined;
  let browser: Browser | undefined;
  const ready = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('useBrowserApp: set up in beforeAll; read it inside a test or hook');
    return v;
  };
  beforeAll(async () => {
    [served, browser] = await Promise.all([startServedApp(typeof opts === 'function' ? opts() : opts), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await served?.stop();
  });
  return {
    get t() {
      return ready(served).t;
    },
    get call() {
      return ready(served).call;
    },
    get origin() {
      return ready(served).origin;
    },
    get smtp() {
      return ready(served).smtp;
    },
    get clock() {
      return ready(served).clock;
    },
    get browser() {
      return ready(browser);
    },
    stop: () => ready(served).stop(),
    open: async (path, o) => {
      const tab = await openTab(ready(browser), ready(served), o);
      await tab.page.goto(path);
      return tab;
    },
  };
}

/** The tokens the pages keep in sessionStorage (null when signed out). */
export async function storedTokens(page: Page): Promise<{ accessToken: string; refreshToken: string } | null> {
  const raw = await page.evaluate(() => sessionStorage.getItem('auth-system.tokens'));
  return raw ? JSON.parse(raw) : null;
}

/** The claims of an access token (not verified: the API verifies it). */
export const claimsOf = (accessToken: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString());

/** Fill the sign-in form on /login and submit it (the caller waits for what follows). */
export async function submitLogin(page: Page, email: string, password: string): Promise<void> {
  const form = page.getByRole('form', { name: 'Sign in with your password' });
  await form.getByLabel('Email').fill(email);
  await form.getByLabel('Password').fill(password);
  await form.getByRole('button', { name: 'Sign in' }).click();
}

/**
 * Wait until the page navigates to `path`; if it shows a problem (role=alert)
 * instead, fail at once with what it says rather than after a timeout.
 */
export async function landsOn(page: Page, path: string): Promise<void> {
  const alert = page.getByRole('alert').first();
  const landed = page.waitForURL((u) => u.pathname === path).then(() => null);
  const alerted = alert.waitFor({ state: 'visible' }).then(async () => (await alert.textContent()) ?? '');
  landed.catch(() => {});
  alerted.catch(() => {});
  const shown = await Promise.race([landed, alerted]);
  if (shown !== null) throw new Error(`expected to land on ${path}; ${page.url()} shows instead: ${shown}`);
}

/** Sign in on /login (optionally with ?next=) and wait for the page it lands on. */
export async function signIn(page: Page, email: string, password: string, next?: string): Promise<void> {
  await page.goto(next ? `/login?next=${encodeURIComponent(next)}` : '/login');
  await submitLogin(page, email, password);
  await landsOn(page, next ?? '/account');
}

/**
 * Whether the page scrolls sideways (its content wider than the viewport): null
 * when it does not, else the widths and the outermost elements that stick out
 * (a container that scrolls on its own, such as .scroll, hides its children's overflow).
 */
export const sidewaysScroll = (page: Page) =>
  page.evaluate(() => {
    const root = document.documentElement;
    if (root.scrollWidth <= root.clientWidth) return null;
    const out: string[] = [];
    const visit = (el: Element) => {
      const r = el.getBoundingClientRect();
      if (r.right > root.clientWidth + 0.5) {
        const name = `${el.tagName.toLowerCase()}${el.className && typeof el.className === 'string' ? `.${el.className.split(' ').join('.')}` : ''}`;
        out.push(`${name} (right edge ${Math.round(r.right)} px)`);
        return;
      }
      const style = getComputedStyle(el);
      if (style.overflowX === 'auto' || style.overflowX === 'scroll' || style.overflowX === 'hidden') return;
      for (const child of el.children) visit(child);
    };
    visit(document.body);
    return `scrollWidth ${root.scrollWidth} > clientWidth ${root.clientWidth}: ${out.slice(0, 5).join(', ')}`;
  });

/**
 * A full-page screenshot of what a newcomer sees. Always taken (it must render);
 * written over the committed one under docs/screenshots only with
 * UPDATE_SCREENSHOTS=1, so a test run leaves the checkout as it was.
 */
export async function screenshot(page: import('playwright-core').Page, name: string): Promise<void> {
  const png = await page.screenshot({ fullPage: true });
  if (png.subarray(1, 4).toString('latin1') !== 'PNG' || png.length < 10_000) throw new Error(`the ${name} screenshot looks empty`);
  if (process.env.UPDATE_SCREENSHOTS === '1') {
    const { mkdirSync, writeFileSync } = await import('node:fs');
    mkdirSync('docs/screenshots', { recursive: true });
    writeFileSync(`docs/screenshots/${name}.png`, png);
  }
}
