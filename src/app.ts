// The whole service, top to bottom: the shared edge (security headers, CORS,
// request id, client address), then the surfaces mounted side by side.
// createApp(deps) builds an app; tests build as many as they need.
import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { AuditWriter } from './audit/audit-log.js';
import { StatsCounters } from './stats/counters.js';
import type { Deps, AppServices } from './deps.js';
import { migrate } from './db/migrate.js';
import { statsCounters } from './db/schema.js';
import { nodeRemoteAddress, requestHeader, setResponseHeaders } from './lib/node-fast-path.js';
import { clientIp, type RemoteAddress } from './middleware/client-ip.js';
import { requestId } from './middleware/request-id.js';
import { applyClientsFile } from './modules/clients/clients.file.js';
import { applyIdentityProvidersFile } from './modules/identity-providers/identity-providers.file.js';
import { resealIdpSecrets } from './modules/identity-providers/identity-providers.service.js';
import { ensureBuiltInRoles } from './modules/roles/roles.service.js';
import { ensureBootstrapAdmin } from './modules/users/users.service.js';
import { defaultArgon2Concurrency, makeDummyHash, setArgon2Concurrency, setArgon2MaxWait } from './security/passwords.js';
import { RoleCache } from './access/role-cache.js';
import { createTokenVerifier } from './security/access-tokens.js';
import { storeKeys } from './store/store.js';
import { OutboxSender, type OutboxOptions } from './adapters/mail/outbox.js';
import { BackchannelSender, type BackchannelOptions } from './adapters/backchannel/sender.js';
import { signLogoutToken } from './provider/backchannel.js';
import { EventOutbox, type EventRelayOptions } from './events/outbox.js';
import { BackgroundTasks } from './lib/background.js';
import { Contributions } from './lib/contributions.js';
import { resealTotpSecrets } from './modules/mfa/mfa.reseal.js';
import { apiErrorHandler, apiNotFound, apiSurface } from './surfaces/api/index.js';
import { oauthSurface } from './surfaces/oauth/index.js';
import { oauthEndpoints } from './surfaces/oauth/endpoints.js';
import { opsSurface } from './surfaces/ops/index.js';
import { pagesSurface } from './surfaces/pages/index.js';

export type AppOptions = {
  /** How to read the peer address on this runtime (Node's by default). */
  remoteAddress?: RemoteAddress;
  audit?: { flushMs?: number; batchSize?: number; maxBuffer?: number };
  /** The outbox sender's timing; `send: false` leaves mail in the outbox (another instance sends it). */
  mail?: OutboxOptions & { send?: boolean };
  /** The event relay's timing; `relay: false` leaves unrelayed events to the other instances. */
  events?: EventRelayOptions & { relay?: boolean };
  /** The back-channel logout sender's timing; `send: false` leaves deliveries to the other instances. */
  backchannel?: BackchannelOptions & { send?: boolean };
};

function createServices(deps: Deps, opts: AppOptions): AppServices {
  setArgon2Concurrency(deps.config.argon2Concurrency ?? defaultArgon2Concurrency());
  setArgon2MaxWait(deps.config.passwordQueueMaxWaitMs);
  const { metrics } = deps;
  // Made now, so that the first unknown-email login costs what the others do.
  const dummy = makeDummyHash(deps.config.argon2);
  dummy.catch(() => {}); // awaited where used; a failure surfaces there
  const roleCache = new RoleCache(deps.database.db, deps.clock);
  const sessionOptions = { accessTtlSeconds: deps.config.jwt.accessTtlSeconds };
  const outbox = new OutboxSender(
    deps.database.db,
    deps.mailer,
    deps.logger,
    { clock: deps.clock, retries: metrics.txRetries, events: metrics.mail },
    opts.mail,
  );
  const events = new EventOutbox(
    {
      db: deps.database.db,
      store: deps.store,
      session: sessionOptions,
      roleCache,
      mail: outbox,
      retries: metrics.txRetries,
      logger: deps.logger,
    },
    opts.events,
  );
  const backchannel = new BackchannelSender(
    deps.database.db,
    deps.logger,
    {
      clock: deps.clock,
      retries: metrics.txRetries,
      outcomes: metrics.backchannel,
      sign: (r) => signLogoutToken(deps, r),
    },
    opts.backchannel,
  );
  // After the commit that queued deliveries (or when the relay replays it), the sender looks for them.
  events.react(async (evs) => {
    if (evs.some((e) => e.type === 'backchannel.requested')) backchannel.wake();
  });
  const tx: AppServices['tx'] = (fn) => events.tx(fn);
  return {
    ...deps,
    audit: new AuditWriter(deps.database.db, deps.logger, metrics, { ...opts.audit, enabled: deps.config.audit.enabled }),
    stats: new StatsCounters(tx, deps.logger, { clock: deps.clock }),
    roleCache,
    verifyToken: createTokenVerifier(deps.keyRing, {
      issuer: deps.config.jwt.issuer,
      audience: deps.config.jwt.audience,
      now: deps.clock,
      maxLifetimeSeconds: deps.config.jwt.accessTtlSeconds,
      providerIssuer: deps.config.publicUrl,
    }),
    dummyHash: dummy,
    sessionOptions,
    tx,
    events,
    outbox,
    backchannel,
    background: new BackgroundTasks(deps.logger),
    contributions: new Contributions(),
  };
}

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'SAMEORIGIN',
  'Referrer-Policy': 'no-referrer',
} as const;

function buildApp(svc: AppServices, opts: AppOptions, inFlight: { count: number }) {
  const { config } = svc;
  const corsOrigins = new Set(config.corsOrigins);
  const corsMiddleware = cors({
    origin: (origin) => (corsOrigins.has(origin) ? origin : null),
    allowHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
    exposeHeaders: ['X-Request-Id', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'Retry-After'],
    maxAge: 600,
  });
  // Read lazily by the OpenAPI document, which describes the finished app.
  // biome-ignore lint/suspicious/noExplicitAny: any Hono app, whatever its env and routes
  let self: Hono<any, any, any> | undefined;
  const app = new Hono()
    // Counts requests in progress, so a graceful stop waits for their handlers
    // (not just their sockets) before the pools close under them. And the
    // security headers that matter for a JSON API, set up front: each response
    // header costs real time in the Node adapter (profiled), so the
    // browser-page ones (COOP, COEP, Origin-Agent-Cluster, X-XSS-Protection...)
    // are left out, and HSTS belongs to the TLS-terminating proxy in front.
    .use(async (c, next) => {
      inFlight.count++;
      try {
        setResponseHeaders(c, SECURITY_HEADERS);
        await next();
      } finally {
        inFlight.count--;
      }
    })
    // Strict by default: no cross-origin browser access (and no CORS headers at
    // all) unless CORS_ORIGINS lists the origin.
    .use((c, next) => {
      const origin = requestHeader(c, 'origin');
      // The provider's endpoints answer CORS per client (surfaces/oauth/cors.ts).
      if (origin === undefined || corsOrigins.size === 0 || c.req.path.startsWith('/oauth2/')) return next();
      return corsMiddleware(c, next);
    })
    .use(requestId())
    .use(clientIp({ trustProxy: config.trustProxy, remoteAddress: opts.remoteAddress ?? nodeRemoteAddress }))
    // The surfaces, side by side, each with its own chain and error renderer
    // (src/surfaces/*). The first whose routes answer a path takes the request;
    // the API, last, takes every path the others leave.
    .route(
      '/',
      opsSurface(svc, () => self!),
    )
    .route('/', pagesSurface(svc))
    .route('/', oauthSurface(svc, oauthEndpoints(svc)))
    .route('/', apiSurface(svc));

  self = app;
  app.notFound(apiNotFound(app));
  app.onError(apiErrorHandler(svc.logger));
  return app;
}

export type AppType = ReturnType<typeof buildApp>;

export type AppHandle = {
  app: AppType;
  services: AppServices;
  /**
   * Wait for requests in progress (up to graceMs), then flush the audit log and
   * counters. Call on graceful shutdown, before closing the store and database.
   */
  stop(graceMs?: number): Promise<void>;
};

export function createApp(deps: Deps, opts: AppOptions = {}): AppHandle {
  const services = createServices(deps, opts);
  const inFlight = { count: 0 };
  const app = buildApp(services, opts, inFlight);
  if (opts.mail?.send !== false) services.outbox.start();
  if (opts.events?.relay !== false) services.events.start();
  if (opts.backchannel?.send !== false) services.backchannel.start();
  services.background.run('reseal TOTP secrets', async () => void (await resealTotpSecrets(services)));
  services.background.run('reseal identity provider secrets', async () => void (await resealIdpSecrets(services)));
  return {
    app,
    services,
    async stop(graceMs = deps.config.shutdownTimeoutSeconds * 1000) {
      // Handlers of requests whose clients already left may still be running.
      const until = Date.now() + graceMs;
      while (inFlight.count > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      // Mail requests answered already still write their outbox rows; then the sender stops.
      await services.background.idle();
      await Promise.all([
        services.audit.stop(),
        services.stats.stop(),
        services.outbox.stop(),
        services.events.stop(),
        services.backchannel.stop(),
      ]);
    },
  };
}

/**
 * Bring the database up to date: migrations, built-in roles, the statistics
 * epoch and the bootstrap admin. Idempotent; safe when instances start together.
 */
export async function prepareDatabase(
  deps: Pick<Deps, 'database' | 'config' | 'store' | 'metrics' | 'logger'> & Partial<Pick<Deps, 'clock' | 'secrets'>>,
): Promise<void> {
  await migrate(deps.database.db, { retries: deps.metrics.txRetries });
  await ensureBuiltInRoles(deps.database.db, deps.metrics.txRetries);
  await deps.database.db.insert(statsCounters).values({ name: 'since', value: 0 }).onConflictDoNothing();
  await deps.store.set(storeKeys.rolesVersion, randomUUID(), { nx: true });
  await ensureBootstrapAdmin(deps);
  await applyClientsFile(deps);
  if (deps.config.identityProvidersFile !== undefined) {
    // Declared secrets are sealed: only a caller with the secret box applies the file.
    if (!deps.secrets) throw new Error('prepareDatabase: IDENTITY_PROVIDERS_FILE needs the secret box (deps.secrets)');
    await applyIdentityProvidersFile({ ...deps, secrets: deps.secrets });
  }
}
