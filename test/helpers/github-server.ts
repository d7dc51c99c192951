// A GitHub-style OAuth 2.0 server on loopback, for the GitHub sign-in's tests: a
// real HTTP server that answers as github.com (or GitHub Enterprise Server) does.
// - `/login/oauth/authorize`: checks client_id and redirect_uri, shows a small
//   sign-in form (a login field, Authorize / Cancel), keeps state and the PKCE
//   challenge with the code it issues.
// - `/login/oauth/access_token`: the client secret (form body or Basic), the code
//   (single use, 10 minutes, this client's, same redirect_uri), the PKCE verifier;
//   refusals are GitHub's 200 with `{"error": ...}`; form-encoded unless JSON is accepted.
// - `/user`, `/user/emails` (Bearer or `token`): on a second origin like
//   api.github.com, or under `/api/v3` of the same origin like Enterprise Server.
// Faults can be set per endpoint to answer garbage, errors or nothing at all.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type GithubEmailEntry = { email: string; primary: boolean; verified: boolean };
export type GithubAccount = { id: number; login: string; name: string | null; emails: GithubEmailEntry[]; publicEmail?: string | null };
export type GithubApp = { clientId: string; clientSecret: string; redirectUris: string[] };

/**
 * What an endpoint answers instead of its normal answer: a response, no answer for a long time,
 * a reset connection, or a JSON body that never ends (chunked, no length).
 */
export type Fault = { status: number; body: string; contentType?: string } | 'hang' | 'reset' | 'endless';
export type Endpoint = 'authorize' | 'token' | 'user' | 'emails';

const json = (status: number, body: unknown): Fault => ({
  status,
  body: JSON.stringify(body),
  contentType: 'application/json; charset=utf-8',
});

/** Answers GitHub really gives, and garbage. */
export const FAULTS = {
  /** The code is unknown, used or expired: GitHub says so with a 200. */
  badVerificationCode: json(200, {
    error: 'bad_verification_code',
    error_description: 'The code passed is incorrect or expired.',
    error_uri:
      'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code',
  }),
  serverError: { status: 500, body: '<html><body><h1>Unicorn!</h1></body></html>', contentType: 'text/html' },
  badGateway: { status: 502, body: 'Bad Gateway', contentType: 'text/plain' },
  notJson: { status: 200, body: '<html>{"id": 1</html>', contentType: 'text/html' },
  truncatedJson: { status: 200, body: '{"id": 1, "login": "oc', contentType: 'application/json' },
  wrongShape: json(200, { id: 'not-a-number', login: ['x'], name: 42 }),
  aList: json(200, [{ id: 1, login: 'octocat' }]),
  badCredentials: json(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' }),
  forbidden: json(403, { message: 'Resource not accessible by integration', documentation_url: 'https://docs.github.com/rest' }),
  emailsNotAList: json(200, { email: 'a@example.com', primary: true, verified: true }),
  /** Well-formed, and 2 MB. */
  huge: json(200, { id: 1, login: 'octocat', name: 'x'.repeat(2_000_000) }),
} satisfies Record<string, Fault>;

export type GithubServer = {
  /** The web origin (githubUrl): authorize and token. */
  url: string;
  /** The API base (githubApiUrl): another origin, or `${url}/api/v3` for Enterprise Server. */
  apiUrl: string;
  accounts: Map<number, GithubAccount>;
  apps: GithubApp[];
  /** Per endpoint, what to answer instead (until cleared). */
  faults: Partial<Record<Endpoint, Fault>>;
  /** Every request received: method, path (no query), and the headers a test may assert on. */
  requests: { method: string; path: string; accept: string; userAgent: string; apiVersion: string; auth: string }[];
  /** Token requests: how the client authenticated and whether it sent a verifier. */
  tokenRequests: { clientAuth: 'post' | 'basic' | 'none'; hadVerifier: boolean; result: string }[];
  /** Sign in as `login` without showing the form (a user already signed in at GitHub who authorized the app before). */
  autoLogin: string | null;
  stop(): Promise<void>;
};

type Code = {
  clientId: string;
  redirectUri: string;
  accountId: number;
  scopes: string[];
  challenge: string | null;
  method: string | null;
  expiresAt: number;
};

const CODE_TTL_MS = 10 * 60_000;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const safeEqual = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * Starts the server. `enterprise`: one origin with the API under /api/v3 (GitHub
 * Enterprise Server); otherwise the API has its own origin (api.github.com).
 */
export async function startGithubServer(opts: {
  apps: GithubApp[];
  accounts: GithubAccount[];
  enterprise?: boolean;
}): Promise<GithubServer> {
  const codes = new Map<string, Code>();
  const tokens = new Map<string, { accountId: number; scopes: string[] }>();
  const sockets = new Set<import('node:net').Socket>();
  const hanging = new Set<ServerResponse>();

  const state: Omit<GithubServer, 'url' | 'apiUrl' | 'stop'> = {
    accounts: new Map(opts.accounts.map((a) => [a.id, a])),
    apps: opts.apps,
    faults: {},
    requests: [],
    tokenRequests: [],
    autoLogin: null,
  };

  const send = (res: ServerResponse, status: number, body: string, contentType: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', ...headers }).end(body);
  };
  const sendJson = (res: ServerResponse, status: number, body: unknown) =>
    send(res, status, JSON.stringify(body), 'application/json; charset=utf-8');
  const html = (res: ServerResponse, status: number, body: string) =>
    send(res, status, `<!doctype html><html><head><title>GitHub</title></head><body>${body}</body></html>`, 'text/html; charset=utf-8');

  /** True when a fault answered the request. */
  function fault(endpoint: Endpoint, req: IncomingMessage, res: ServerResponse): boolean {
    const f = state.faults[endpoint];
    if (!f) return false;
    if (f === 'hang') hanging.add(res);
    else if (f === 'reset') req.socket.destroy();
    else if (f === 'endless') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('[');
      const chunk = `${'"garbage",'.repeat(6000)}`;
      const pump = () => {
        if (res.destroyed) return;
        if (res.write(chunk)) setImmediate(pump);
        else res.once('drain', pump);
      };
      res.once('close', () => hanging.delete(res));
      hanging.add(res);
      pump();
    } else send(res, f.status, f.body, f.contentType ?? 'application/octet-stream');
    return true;
  }

  const redirect = (res: ServerResponse, to: URL) => {
    res.writeHead(302, { location: to.href }).end();
  };

  function authorizeParams(p: URLSearchParams, res: ServerResponse): { app: GithubApp; redirectUri: string } | null {
    const app = state.apps.find((a) => a.clientId === p.get('client_id'));
    if (!app) {
      html(res, 404, '<h1>404</h1><p>Not Found</p>');
      return null;
    }
    const redirectUri = p.get('redirect_uri') ?? app.redirectUris[0]!;
    if (!app.redirectUris.includes(redirectUri)) {
      // GitHub sends the browser to the app's registered callback with the error.
      const to = new URL(app.redirectUris[0]!);
      to.searchParams.set('error', 'redirect_uri_mismatch');
      to.searchParams.set('error_description', 'The redirect_uri MUST match the registered callback URL for this application.');
      const st = p.get('state');
      if (st !== null) to.searchParams.set('state', st);
      redirect(res, to);
      return null;
    }
    return { app, redirectUri };
  }

  function issueCode(p: URLSearchParams, app: GithubApp, redirectUri: string, account: GithubAccount, res: ServerResponse) {
    const code = randomBytes(10).toString('hex');
    codes.set(code, {
      clientId: app.clientId,
      redirectUri,
      accountId: account.id,
      scopes: (p.get('scope') ?? '').split(/[\s,]+/).filter(Boolean),
      challenge: p.get('code_challenge'),
      method: p.get('code_challenge_method'),
      expiresAt: Date.now() + CODE_TTL_MS,
    });
    const to = new URL(redirectUri);
    to.searchParams.set('code', code);
    const st = p.get('state');
    if (st !== null) to.searchParams.set('state', st);
    redirect(res, to);
  }

  const FORWARDED = ['client_id', 'redirect_uri', 'scope', 'state', 'code_challenge', 'code_challenge_method'];

  async function authorize(req: IncomingMessage, res: ServerResponse, url: URL) {
    if (fault('authorize', req, res)) return;
    const p = req.method === 'POST' ? new URLSearchParams(await readBody(req)) : url.searchParams;
    const checked = authorizeParams(p, res);
    if (!checked) return;
    const { app, redirectUri } = checked;
    if (req.method === 'POST') {
      if (p.has('cancel')) {
        const to = new URL(redirectUri);
        to.searchParams.set('error', 'access_denied');
        to.searchParams.set('error_description', 'The user has denied your application access.');
        const st = p.get('state');
        if (st !== null) to.searchParams.set('state', st);
        return redirect(res, to);
      }
      const account = [...state.accounts.values()].find((a) => a.login === p.get('login'));
      if (!account) return html(res, 200, `<p>Incorrect username or password.</p>${form(p)}`);
      return issueCode(p, app, redirectUri, account, res);
    }
    const auto = state.autoLogin === null ? undefined : [...state.accounts.values()].find((a) => a.login === state.autoLogin);
    if (auto) return issueCode(p, app, redirectUri, auto, res);
    html(res, 200, form(p));
  }

  const form = (p: URLSearchParams) =>
    `<h1>Sign in to GitHub</h1><form method="post" action="/login/oauth/authorize">${FORWARDED.filter((k) => p.has(k))
      .map((k) => `<input type="hidden" name="${k}" value="${esc(p.get(k)!)}">`)
      .join(
        '',
      )}<label>Username <input name="login"></label><button type="submit" name="authorize" value="1">Authorize</button><button type="submit" name="cancel" value="1">Cancel</button></form>`;

  async function token(req: IncomingMessage, res: ServerResponse) {
    if (req.method !== 'POST') return sendJson(res, 404, { message: 'Not Found' });
    const raw = await readBody(req);
    if (fault('token', req, res)) return;
    const p = new URLSearchParams(raw);
    let clientId = p.get('client_id');
    let secret = p.get('client_secret');
    let clientAuth: 'post' | 'basic' | 'none' = secret === null ? 'none' : 'post';
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const [id, pw] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      clientId = decodeURIComponent(id ?? '');
      secret = decodeURIComponent(pw ?? '');
      clientAuth = 'basic';
    }
    const wantsJson = (req.headers.accept ?? '').includes('json');
    const answer = (body: Record<string, string>) => {
      state.tokenRequests.push({ clientAuth, hadVerifier: p.has('code_verifier'), result: body.error ?? 'ok' });
      if (wantsJson) return sendJson(res, 200, body);
      send(res, 200, new URLSearchParams(body).toString(), 'application/x-www-form-urlencoded; charset=utf-8');
    };
    const app = state.apps.find((a) => a.clientId === clientId);
    if (!app || secret === null || !safeEqual(secret, app.clientSecret))
      return answer({
        error: 'incorrect_client_credentials',
        error_description: 'The client_id and/or client_secret passed are incorrect.',
      });
    const code = codes.get(p.get('code') ?? '');
    codes.delete(p.get('code') ?? '');
    const bad = { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' };
    if (!code || code.expiresAt < Date.now() || code.clientId !== app.clientId) return answer(bad);
    if (p.has('redirect_uri') && p.get('redirect_uri') !== code.redirectUri)
      return answer({
        error: 'redirect_uri_mismatch',
        error_description: 'The redirect_uri MUST match the registered callback URL for this application.',
      });
    if (code.challenge !== null) {
      const verifier = p.get('code_verifier') ?? '';
      const computed = code.method === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
      if (!safeEqual(computed, code.challenge)) return answer(bad);
    }
    const accessToken = `gho_${randomBytes(18).toString('base64url')}`;
    tokens.set(accessToken, { accountId: code.accountId, scopes: code.scopes });
    answer({ access_token: accessToken, token_type: 'bearer', scope: code.scopes.join(',') });
  }

  function api(req: IncomingMessage, res: ServerResponse, path: string) {
    const endpoint: Endpoint | null = path === '/user' ? 'user' : path === '/user/emails' ? 'emails' : null;
    if (req.method !== 'GET' || endpoint === null) return sendJson(res, 404, { message: 'Not Found' });
    // GitHub refuses API requests without a User-Agent.
    if (!req.headers['user-agent'])
      return send(
        res,
        403,
        'Request forbidden by administrative rules. Please make sure your request has a User-Agent header.',
        'text/plain',
      );
    const m = /^(?:Bearer|token) (\S+)$/i.exec(req.headers.authorization ?? '');
    const grant = m ? tokens.get(m[1]!) : undefined;
    const account = grant ? state.accounts.get(grant.accountId) : undefined;
    if (!grant || !account) return sendJson(res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
    if (fault(endpoint, req, res)) return;
    if (endpoint === 'user')
      return sendJson(res, 200, {
        login: account.login,
        id: account.id,
        node_id: `U_${account.id}`,
        type: 'User',
        site_admin: false,
        name: account.name,
        email: account.publicEmail ?? null,
        created_at: '2011-01-25T18:44:36Z',
      });
    if (!grant.scopes.includes('user:email') && !grant.scopes.includes('user'))
      return sendJson(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest/users/emails' });
    sendJson(
      res,
      200,
      account.emails.map((e) => ({ ...e, visibility: e.primary ? 'private' : null })),
    );
  }

  const record = (req: IncomingMessage, path: string) =>
    state.requests.push({
      method: req.method ?? '',
      path,
      accept: req.headers.accept ?? '',
      userAgent: req.headers['user-agent'] ?? '',
      apiVersion: String(req.headers['x-github-api-version'] ?? ''),
      auth: (req.headers.authorization ?? '').split(' ')[0] ?? '',
    });

  const handler = (apiPrefix: string | null, serveWeb: boolean) => (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    record(req, url.pathname);
    const run = async () => {
      if (serveWeb && url.pathname === '/login/oauth/authorize') return authorize(req, res, url);
      if (serveWeb && url.pathname === '/login/oauth/access_token') return token(req, res);
      if (apiPrefix !== null && url.pathname.startsWith(`${apiPrefix}/`)) return api(req, res, url.pathname.slice(apiPrefix.length));
      sendJson(res, 404, { message: 'Not Found' });
    };
    run().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  };

  const servers: Server[] = [];
  const track = (s: Server) => {
    s.on('connection', (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    servers.push(s);
    return s;
  };
  let url: string;
  let apiUrl: string;
  if (opts.enterprise) {
    url = await listen(track(createServer(handler('/api/v3', true))));
    apiUrl = `${url}/api/v3`;
  } else {
    url = await listen(track(createServer(handler(null, true))));
    apiUrl = await listen(track(createServer(handler('', false))));
  }

  return Object.assign(state, {
    url,
    apiUrl,
    async stop() {
      for (const res of hanging) res.destroy();
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  });
}
