// Peers for the OpenID provider's tests and bench, with no Chromium:
// - UserAgent: "be the browser" over fetch. One hop at a time (redirect: manual),
//   cookies kept per host like a browser's jar (host-only, path, expiry; the port
//   is not part of a cookie's scope), redirects followed by hand, HTML forms
//   submitted. Enough for authorization-code flows driven by openid-client,
//   Auth.js, Apache's mod_auth_openidc or the bench.
// - startOidcProvider: oidc-provider (v9, the certified Node OpenID provider) in
//   process on loopback with the given clients and accounts: a known-good issuer
//   to prove a harness against, and the bench's yardstick. Its development
//   interactions (a login form taking any password, a consent form) are what a
//   UserAgent submits.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, request as httpRequest, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';

// ---------------------------------------------------------------- the user agent

type Cookie = { name: string; value: string; host: string; path: string; expires: number | null; secure: boolean };

/** One page as the user agent ends on it: the last response of a chain of redirects. */
export type Page = { url: string; status: number; headers: Headers; text: string };

export type FollowOptions = {
  /** Stop before requesting a location this accepts (e.g. a client's redirect URI nobody serves). */
  stopAt?: (url: URL) => boolean;
  /** At most this many redirects (default 20). */
  max?: number;
};

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export class UserAgent {
  private cookies: Cookie[] = [];
  /** Every request sent, in order ("GET http://..."): for assertions and for debugging a flow. */
  readonly history: string[] = [];

  constructor(private readonly nowMs: () => number = Date.now) {}

  /** The Cookie header this agent sends to `url`. */
  cookieHeader(url: string | URL): string {
    const u = new URL(url);
    const now = this.nowMs();
    this.cookies = this.cookies.filter((c) => c.expires === null || c.expires > now);
    return this.cookies
      .filter(
        (c) =>
          c.host === u.hostname && pathMatches(u.pathname, c.path) && (!c.secure || u.protocol === 'https:' || LOOPBACK.has(u.hostname)),
      )
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  /** The value of cookie `name` for `url`, if the jar holds one. */
  cookie(url: string | URL, name: string): string | undefined {
    const u = new URL(url);
    return this.cookies.find((c) => c.host === u.hostname && c.name === name && pathMatches(u.pathname, c.path))?.value;
  }

  /** Put cookies (a Cookie header's `name=value; ...`) in the jar for `url`'s host, path /: a session signed in elsewhere. */
  addCookies(url: string | URL, header: string): void {
    const u = new URL(url);
    for (const pair of header.split(';')) if (pair.trim()) this.store(new URL('/', u), `${pair.trim()}; Path=/`);
  }

  /** Forget every cookie (a new browser profile), or those of one host. */
  clearCookies(host?: string): void {
    this.cookies = host ? this.cookies.filter((c) => c.host !== host) : [];
  }

  /**
   * One request, no redirect followed; the jar sends and stores cookies. Sent with
   * node:http, not fetch: fetch forces `Sec-Fetch-Mode: cors`, and relying parties
   * (mod_auth_openidc) answer such requests 401 instead of starting a sign-in. A
   * browser's top-level navigation says `navigate`, and accepts HTML.
   */
  async send(
    url: string | URL,
    init: { method?: string; headers?: Record<string, string>; body?: string | URLSearchParams } = {},
  ): Promise<Response> {
    const u = new URL(url);
    const method = init.method ?? (init.body === undefined ? 'GET' : 'POST');
    const headers: Record<string, string> = {
      accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
      'accept-language': 'en',
      'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) auth-system-tests',
      'sec-fetch-mode': 'navigate',
      'sec-fetch-dest': 'document',
    };
    for (const [k, v] of Object.entries(init.headers ?? {})) headers[k.toLowerCase()] = v;
    const cookie = this.cookieHeader(u);
    if (cookie && !('cookie' in headers)) headers.cookie = cookie;
    const body = init.body === undefined ? undefined : Buffer.from(String(init.body));
    if (init.body instanceof URLSearchParams && !('content-type' in headers)) headers['content-type'] = 'application/x-www-form-urlencoded';
    if (body) headers['content-length'] = String(body.length);
    this.history.push(`${method} ${u.href}`);
    const res = await new Promise<Response>((resolve, reject) => {
      const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { method, headers }, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.once('error', reject);
        r.once('end', () => {
          const h = new Headers();
          for (let i = 0; i < r.rawHeaders.length; i += 2) h.append(r.rawHeaders[i]!, r.rawHeaders[i + 1]!);
          const status = r.statusCode ?? 0;
          const nullBody = status === 204 || status === 304 || method === 'HEAD';
          resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, statusText: r.statusMessage ?? '', headers: h }));
        });
      });
      req.once('error', reject);
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${u.href}: no answer in 30 s`)));
      req.end(body);
    });
    for (const line of res.headers.getSetCookie()) this.store(u, line);
    return res;
  }

  /** GET `url` and follow its redirects. */
  async get(url: string | URL, opts: FollowOptions = {}): Promise<Page> {
    return this.follow(await this.send(url), url, opts);
  }

  /** POST a form to `url` and follow the redirects of the answer. */
  async post(
    url: string | URL,
    form: Record<string, string> | URLSearchParams,
    opts: FollowOptions & { origin?: string } = {},
  ): Promise<Page> {
    const body = form instanceof URLSearchParams ? form : new URLSearchParams(form);
    // A browser's form POST carries the Origin of the page the form was on.
    const origin = opts.origin ?? new URL(url).origin;
    return this.follow(await this.send(url, { method: 'POST', body, headers: { origin } }), url, opts);
  }

  /**
   * Follow `res` (the answer to a request for `from`) through its redirects, like a
   * browser: 301/302/303 become a GET, 307/308 are only followed for GETs here.
   * Ends on the first non-redirect, or on a location `stopAt` accepts (then the
   * page's url is that location, its status the redirect's, its text empty).
   */
  async follow(res: Response, from: string | URL, opts: FollowOptions = {}): Promise<Page> {
    let current = res;
    let url = new URL(from);
    for (let hops = 0; ; hops++) {
      const location = current.headers.get('location');
      if (!REDIRECTS.has(current.status) || !location) break;
      if (hops >= (opts.max ?? 20)) throw new Error(`more than ${opts.max ?? 20} redirects (last: ${url.href})`);
      const next = new URL(location, url);
      await current.body?.cancel();
      if (opts.stopAt?.(next)) return { url: next.href, status: current.status, headers: current.headers, text: '' };
      url = next;
      current = await this.send(url);
    }
    return { url: url.href, status: current.status, headers: current.headers, text: await current.text() };
  }

  /**
   * Submit a form of `page` as a user would: its fields with their current values,
   * `fields` typed over them, and the submit button `button` names (by name, value
   * or text; the first form containing it), else the page's first form. Follows
   * the answer's redirects.
   */
  async submit(page: Page, fields: Record<string, string> = {}, opts: FollowOptions & { button?: string | RegExp } = {}): Promise<Page> {
    const forms = parseForms(page.text);
    const form = opts.button === undefined ? forms[0] : forms.find((f) => f.buttons.some((b) => buttonMatches(b, opts.button!)));
    if (!form)
      throw new Error(
        `no form${opts.button ? ` with a button ${opts.button}` : ''} on ${page.url} (status ${page.status}): ${page.text.slice(0, 300)}`,
      );
    const body = new URLSearchParams();
    for (const [name, value] of form.fields) if (!(name in fields)) body.append(name, value);
    for (const [name, value] of Object.entries(fields)) body.append(name, value);
    const button = opts.button === undefined ? undefined : form.buttons.find((b) => buttonMatches(b, opts.button!));
    if (button?.name) body.append(button.name, button.value);
    const action = new URL(form.action || page.url, page.url);
    if (form.method === 'get') {
      action.search = body.toString();
      return this.get(action, opts);
    }
    return this.post(action, body, { ...opts, origin: new URL(page.url).origin });
  }

  private store(url: URL, line: string): void {
    const [pair, ...attrs] = line.split(';');
    const eq = pair!.indexOf('=');
    if (eq <= 0) return;
    const cookie: Cookie = {
      name: pair!.slice(0, eq).trim(),
      value: pair!.slice(eq + 1).trim(),
      host: url.hostname,
      path: defaultPath(url.pathname),
      expires: null,
      secure: false,
    };
    let maxAge: number | undefined;
    for (const attr of attrs) {
      const i = attr.indexOf('=');
      const key = (i < 0 ? attr : attr.slice(0, i)).trim().toLowerCase();
      const value = i < 0 ? '' : attr.slice(i + 1).trim();
      if (key === 'path' && value.startsWith('/')) cookie.path = value;
      else if (key === 'max-age' && /^-?\d+$/.test(value)) maxAge = Number(value);
      else if (key === 'expires' && !Number.isNaN(Date.parse(value))) cookie.expires = Date.parse(value);
      else if (key === 'secure') cookie.secure = true;
    }
    if (maxAge !== undefined) cookie.expires = this.nowMs() + maxAge * 1000;
    if (cookie.secure && url.protocol !== 'https:' && !LOOPBACK.has(url.hostname)) return;
    this.cookies = this.cookies.filter((c) => !(c.name === cookie.name && c.host === cookie.host && c.path === cookie.path));
    if (cookie.expires === null || cookie.expires > this.nowMs()) this.cookies.push(cookie);
  }
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

function defaultPath(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

type Button = { name: string; value: string; text: string };
type Form = { id: string; action: string; method: 'get' | 'post'; fields: [string, string][]; buttons: Button[] };

function buttonMatches(b: Button, want: string | RegExp): boolean {
  return typeof want === 'string' ? [b.name, b.value, b.text].includes(want) : want.test(b.text) || want.test(b.value) || want.test(b.name);
}

function attrsOf(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([^\s=/<>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    out[m[1]!.toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos|#39);/gi, (_, e: string) => {
    const k = e.toLowerCase();
    if (k.startsWith('#x')) return String.fromCodePoint(Number.parseInt(k.slice(2), 16));
    if (k.startsWith('#')) return String.fromCodePoint(Number(k.slice(1)));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[k] ?? '';
  });
}

/** The forms of an HTML page: action, method, the fields a submit sends (not buttons) and the submit buttons. */
export function parseForms(html: string): Form[] {
  const forms: Form[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = attrsOf(m[1]!);
    const form: Form = {
      id: a.id ?? '',
      action: a.action ?? '',
      method: a.method?.toLowerCase() === 'get' ? 'get' : 'post',
      fields: [],
      buttons: [],
    };
    for (const t of m[2]!.matchAll(/<(input|button|textarea|select)\b([^>]*)>(?:([\s\S]*?)<\/\1>)?/gi)) {
      const tag = t[1]!.toLowerCase();
      const at = attrsOf(t[2]!);
      const type = (at.type ?? (tag === 'button' ? 'submit' : 'text')).toLowerCase();
      if (type === 'submit' || type === 'image') {
        form.buttons.push({ name: at.name ?? '', value: at.value ?? '', text: (t[3] ?? at.value ?? '').replace(/<[^>]*>/g, '').trim() });
        continue;
      }
      if (!at.name || 'disabled' in at || (type === 'checkbox' || type === 'radio' ? !('checked' in at) : false)) continue;
      if (tag === 'textarea') form.fields.push([at.name, decodeEntities(t[3] ?? '')]);
      else if (tag === 'select') {
        const opt = /<option\b([^>]*\bselected\b[^>]*)>/i.exec(t[3] ?? '') ?? /<option\b([^>]*)>/i.exec(t[3] ?? '');
        form.fields.push([at.name, opt ? (attrsOf(opt[1]!).value ?? '') : '']);
      } else if (tag === 'input') form.fields.push([at.name, at.value ?? (type === 'checkbox' ? 'on' : '')]);
    }
    forms.push(form);
  }
  // Submit buttons outside their form, tied to it by form="<id>".
  const outside = html.replace(/<form\b[^>]*>[\s\S]*?<\/form>/gi, '');
  for (const t of outside.matchAll(/<(button|input)\b([^>]*)>(?:([\s\S]*?)<\/button>)?/gi)) {
    const at = attrsOf(t[2]!);
    const form = at.form ? forms.find((f) => f.id === at.form) : undefined;
    if (!form || (at.type ?? (t[1]!.toLowerCase() === 'button' ? 'submit' : 'text')).toLowerCase() !== 'submit') continue;
    form.buttons.push({ name: at.name ?? '', value: at.value ?? '', text: (t[3] ?? at.value ?? '').replace(/<[^>]*>/g, '').trim() });
  }
  return forms;
}

// ---------------------------------------------------------------- PKCE

/** A PKCE pair (RFC 7636, S256). */
export async function pkcePair(): Promise<{ verifier: string; challenge: string }> {
  const verifier = randomBytes(32).toString('base64url');
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return { verifier, challenge: Buffer.from(digest).toString('base64url') };
}

// ---------------------------------------------------------------- oidc-provider

/**
 * oidc-provider's storage, in memory without a size bound: its own memory adapter
 * is an LRU of 1000 entries, so under load (a code and an access token per flow)
 * it evicts the grants and sessions still in use. Entries go at their expiry.
 */
class MapStore {
  entries = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  grants = new Map<string, Set<string>>();
  sweepAt = 0;

  get(key: string) {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.payload;
  }
}

class MapAdapter {
  constructor(
    private readonly model: string,
    private readonly store: MapStore,
  ) {}

  private key(id: string) {
    return `${this.model}:${id}`;
  }

  async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
    const now = Date.now();
    if (now > this.store.sweepAt) {
      this.store.sweepAt = now + 10_000;
      for (const [k, e] of this.store.entries) if (e.expiresAt <= now) this.store.entries.delete(k);
    }
    const key = this.key(id);
    this.store.entries.set(key, { payload, expiresAt: typeof expiresIn === 'number' ? now + expiresIn * 1000 : Number.POSITIVE_INFINITY });
    if (this.model === 'Session' && typeof payload.uid === 'string')
      this.store.entries.set(`sessionUid:${payload.uid}`, { payload: { id }, expiresAt: Number.POSITIVE_INFINITY });
    if (typeof payload.grantId === 'string') {
      const members = this.store.grants.get(payload.grantId) ?? new Set<string>();
      this.store.grants.set(payload.grantId, members.add(key));
    }
  }

  async find(id: string) {
    return this.store.get(this.key(id));
  }

  async findByUid(uid: string) {
    const ref = this.store.get(`sessionUid:${uid}`);
    return ref ? this.find(String(ref.id)) : undefined;
  }

  async findByUserCode() {
    return undefined;
  }

  async consume(id: string) {
    const p = this.store.get(this.key(id));
    if (p) p.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id: string) {
    this.store.entries.delete(this.key(id));
  }

  async revokeByGrantId(grantId: string) {
    for (const key of this.store.grants.get(grantId) ?? []) this.store.entries.delete(key);
    this.store.grants.delete(grantId);
  }
}

export type PeerClient = {
  client_id: string;
  /** Omit for a public client (token_endpoint_auth_method none, PKCE required). */
  client_secret?: string;
  redirect_uris: string[];
  post_logout_redirect_uris?: string[];
  /** Default: authorization_code and refresh_token. */
  grant_types?: string[];
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post' | 'none';
  /** Space separated; default: every scope below. */
  scope?: string;
  /** Where oidc-provider POSTs logout tokens (Back-Channel Logout 1.0) when a session of this client ends. */
  backchannel_logout_uri?: string;
  /** Default RS256; EdDSA and ES256 are signed with the provider's Ed25519 and P-256 keys. */
  id_token_signed_response_alg?: 'RS256' | 'ES256' | 'EdDSA';
};

export type PeerAccount = { email: string; email_verified?: boolean; name?: string };

export type PeerProvider = {
  /** http://127.0.0.1:<port>, no trailing slash: also the discovery document's base. */
  issuer: string;
  /** The oidc-provider instance (its models, events, interactionDetails...). */
  provider: import('oidc-provider').default;
  stop(): Promise<void>;
};

/**
 * oidc-provider v9 in this process, on 127.0.0.1 (a free port unless `port`):
 * RS256, Ed25519 and P-256 keys made here, the in-memory adapter, `accounts` by id (the dev login
 * form's "login" field is the account id; any password), scopes openid, email,
 * profile, offline_access; refresh tokens rotate on every use (as ours do).
 */
export async function startOidcProvider(opts: {
  clients: PeerClient[];
  accounts: Record<string, PeerAccount>;
  port?: number;
  /** Seconds; defaults are oidc-provider's. */
  ttl?: { AccessToken?: number; IdToken?: number; RefreshToken?: number; Session?: number; Grant?: number };
}): Promise<PeerProvider> {
  const { default: Provider } = await import('oidc-provider');
  let handle: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server = createServer((req, res) => {
    if (handle) handle(req, res);
    else res.writeHead(503).end();
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
  const jwk = { ...(await exportJWK(privateKey)), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
  // An Ed25519 key too, for clients whose id_token_signed_response_alg is EdDSA (RS256 stays the default).
  const { privateKey: edKey } = await generateKeyPair('EdDSA', { extractable: true, crv: 'Ed25519' });
  const edJwk = { ...(await exportJWK(edKey)), kid: randomBytes(8).toString('hex'), alg: 'EdDSA', use: 'sig' };
  // And a P-256 key, for ES256.
  const { privateKey: ecKey } = await generateKeyPair('ES256', { extractable: true });
  const ecJwk = { ...(await exportJWK(ecKey)), kid: randomBytes(8).toString('hex'), alg: 'ES256', use: 'sig' };
  const store = new MapStore();
  const provider = new Provider(issuer, {
    clients: opts.clients.map((c) => ({
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: c.client_secret ? 'client_secret_basic' : 'none',
      ...c,
    })),
    adapter: (model: string) => new MapAdapter(model, store),
    jwks: { keys: [jwk as never, edJwk as never, ecJwk as never] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    features: {
      devInteractions: { enabled: true },
      userinfo: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
    },
    pkce: { required: () => false },
    // Its outgoing requests (back-channel logout tokens) refuse special-use addresses
    // (its SSRF guard, a dispatcher it passes to fetch); every peer here is on loopback.
    fetch: (url: string | URL, options: RequestInit & { dispatcher?: unknown }) => {
      const { dispatcher: _guard, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    // The ID token carries the granted scopes' claims too (as this service's does, and
    // as relying parties that read only the ID token, like Auth.js, need).
    conformIdTokenClaims: false,
    rotateRefreshToken: () => true,
    // Explicit lifetimes (oidc-provider's own defaults, else it prints a notice per kind).
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Grant: 14 * 24 * 3600,
      RefreshToken: 14 * 24 * 3600,
      Session: 14 * 24 * 3600,
      ...opts.ttl,
    },
    async findAccount(_ctx, id) {
      const account = opts.accounts[id];
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: account.email, email_verified: account.email_verified ?? true, name: account.name ?? id };
        },
      };
    },
  });
  // oidc-provider prints its development-only warnings once per process; they are expected here.
  handle = provider.callback();
  return {
    issuer,
    provider,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Go on from `page` as a user clicking through the provider's pages (each page's
 * form: the one with a button `button` matches when there is one, else the first)
 * until the browser is sent to a URL `stopAt` accepts; returns that URL, not requested.
 */
export async function clickThrough(ua: UserAgent, page: Page, stopAt: (u: URL) => boolean, button?: RegExp, maxSteps = 4): Promise<URL> {
  let current = page;
  for (let step = 0; step < maxSteps && !stopAt(new URL(current.url)); step++) {
    const forms = parseForms(current.text);
    const matches = button && forms.some((f) => f.buttons.some((b) => button.test(b.text) || button.test(b.value)));
    current = await ua.submit(current, {}, { stopAt, ...(matches ? { button } : {}) });
  }
  const url = new URL(current.url);
  if (!stopAt(url)) throw new Error(`did not get back to the client: ${current.status} ${current.url} ${current.text.slice(0, 300)}`);
  return url;
}

/**
 * Sign `accountId` in at a peer provider through its development interactions
 * (login form, then consent form when asked), starting from an authorization URL;
 * returns the client's redirect (with `code` or `error`) without requesting it.
 */
export async function loginAtPeer(ua: UserAgent, authorizeUrl: string | URL, accountId: string, redirectUri: string): Promise<URL> {
  const stopAt = (u: URL) => u.href.startsWith(redirectUri);
  let page = await ua.get(authorizeUrl, { stopAt });
  for (let step = 0; step < 4 && !stopAt(new URL(page.url)); step++) {
    const fields: Record<string, string> = /name="prompt" value="login"/.test(page.text) ? { login: accountId, password: 'any' } : {};
    page = await ua.submit(page, fields, { stopAt });
  }
  const url = new URL(page.url);
  if (!stopAt(url))
    throw new Error(
      `the sign-in at ${String(authorizeUrl)} did not come back to ${redirectUri}: ${page.status} ${page.text.slice(0, 300)}`,
    );
  return url;
}
