// The one reader of the environment. Everything else receives the typed Config
// through deps. A bad configuration is reported all at once, never piecemeal.
import { createPrivateKey, type JsonWebKey as NodeJwk } from 'node:crypto';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { parseDatabaseUrl } from './lib/database-url.js';

const intIn = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be an integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean),
);

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const envSchema = z.object({
  NODE_ENV: z.string().optional(),
  PORT: intIn(0, 65535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// URL')
    .optional(),
  DATABASE_CA_CERT: z.string().min(1).optional(),
  DATABASE_CLIENT_CERT: z.string().min(1).optional(),
  DATABASE_CLIENT_KEY: z.string().min(1).optional(),
  DATABASE_POOL_SIZE: intIn(1, 200).default(10),
  DATABASE_STATEMENT_TIMEOUT_MS: intIn(100, 3_600_000).default(30_000),
  DATABASE_LOCK_TIMEOUT_MS: intIn(10, 3_600_000).default(5_000),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  REDIS_NEAR_CACHE: z.enum(['on', 'off']).default('on'),
  JWT_PRIVATE_KEY: z.string().min(1).optional(),
  JWT_PUBLIC_KEYS: z.string().min(1).optional(),
  JWT_RSA_PRIVATE_KEY: z.string().min(1).optional(),
  JWT_EC_PRIVATE_KEY: z.string().min(1).optional(),
  OAUTH_REFRESH_GRACE_SECONDS: intIn(0, 300).default(10),
  OAUTH_SECRET_OVERLAP_SECONDS: intIn(0, 30 * 86_400).default(0),
  OAUTH_CLIENTS_FILE: z.string().trim().min(1).optional(),
  IDENTITY_PROVIDERS_FILE: z.string().trim().min(1).optional(),
  REAUTH_MAX_AGE_SECONDS: intIn(30, 86_400).default(300),
  JWT_ISSUER: z.string().min(1).default('auth-system'),
  JWT_AUDIENCE: z.string().min(1).default('auth-system'),
  ACCESS_TOKEN_TTL_SECONDS: intIn(30, 86_400).default(900),
  REFRESH_TOKEN_TTL_SECONDS: intIn(60, 31_536_000).default(2_592_000),
  RATE_LIMIT_REQUESTS: intIn(1, 1_000_000).default(300),
  RATE_LIMIT_WINDOW_SECONDS: intIn(1, 86_400).default(60),
  LOGIN_MAX_FAILURES: intIn(1, 10_000).default(5),
  LOGIN_FAILURE_WINDOW_SECONDS: intIn(1, 86_400).default(900),
  LOGIN_IP_MAX_FAILURES: intIn(1, 1_000_000).default(100),
  LOGIN_ACCOUNT_MAX_FAILURES: intIn(1, 1_000_000).default(100),
  TRUST_PROXY: z.string().trim().min(1).optional(),
  BOOTSTRAP_ADMIN_EMAIL: z.string().trim().toLowerCase().pipe(z.email()).optional(),
  BOOTSTRAP_ADMIN_PASSWORD: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(logLevels).default('info'),
  BODY_LIMIT_BYTES: intIn(1024, 10 * 1024 * 1024).default(64 * 1024),
  ARGON2_MEMORY_KIB: intIn(8, 4 * 1024 * 1024).default(19_456),
  ARGON2_TIME_COST: intIn(1, 100).default(2),
  ARGON2_PARALLELISM: intIn(1, 16).default(1),
  ARGON2_CONCURRENCY: intIn(1, 1024).optional(),
  PASSWORD_QUEUE_MAX_WAIT_MS: intIn(0, 600_000).default(3_000),
  REQUEST_TIMEOUT_SECONDS: intIn(1, 3_600).default(30),
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  METRICS_PORT: intIn(1, 65535).optional(),
  METRICS_HOST: z.string().trim().min(1).optional(),
  MAIL_FROM: z.string().trim().min(3).default('auth-system <no-reply@localhost>'),
  PUBLIC_URL: z
    .string()
    .trim()
    .regex(/^https?:\/\/[^/?#\s]+\/?$/, 'must be an origin such as https://auth.example.com (no path, query or fragment)')
    .optional(),
  SMTP_URL: z
    .string()
    .trim()
    .regex(/^smtps?:\/\/[^/\s]+/, 'must be an smtp:// or smtps:// URL')
    .optional(),
  EMAIL_VERIFICATION: z.enum(['off', 'optional', 'required']).default('optional'),
  VERIFY_EMAIL_URL: z.string().trim().optional(),
  RESET_PASSWORD_URL: z.string().trim().optional(),
  EMAIL_VERIFICATION_TTL_SECONDS: intIn(60, 30 * 86_400).default(86_400),
  PASSWORD_RESET_TTL_SECONDS: intIn(60, 86_400).default(1_800),
  MAIL_PER_ADDRESS_PER_HOUR: intIn(1, 1_000).default(3),
  MFA_REQUIRED_ROLES: csv.optional(),
  MFA_ENCRYPTION_KEY: z.string().trim().optional(),
  MFA_PREVIOUS_ENCRYPTION_KEYS: csv.optional(),
  WEBAUTHN_RP_ID: z
    .string()
    .trim()
    .toLowerCase()
    .regex(/^[a-z0-9.-]+$/, 'must be a host name such as auth.example.com')
    .optional(),
  WEBAUTHN_ORIGINS: csv.optional(),
  WEBAUTHN_RP_NAME: z.string().trim().min(1).max(100).default('auth-system'),
  AUDIT_RETENTION_DAYS: intIn(1, 36_500).default(90),
  AUDIT_LOG: z.enum(['on', 'off']).default('on'),
  CORS_ORIGINS: csv.optional(),
  SHUTDOWN_TIMEOUT_SECONDS: intIn(1, 600).default(10),
});

export type Config = {
  production: boolean;
  port: number;
  host: string;
  dataDir: string;
  database: {
    url: string | undefined;
    caCert: string | undefined;
    clientCert: string | undefined;
    clientKey: string | undefined;
    poolSize: number;
    /** Server-side limits per statement and per lock wait (a stuck query frees its pool slot). */
    statementTimeoutMs: number;
    lockTimeoutMs: number;
  };
  redisUrl: string | undefined;
  /** Serve sessions, roles, profiles and versions from memory kept true by Redis invalidation; rate-limit hits batched. */
  redisNearCache: boolean;
  jwt: {
    privateKey: string | undefined;
    publicKeys: string | undefined;
    /** The OpenID provider's RSA key (RS256; PEM or JWK, 2048+ bits); unset outside production: generated in DATA_DIR. */
    rsaPrivateKey: string | undefined;
    /** The provider's P-256 key for ES256 ID tokens; unset: generated outside production, ES256 not offered in production. */
    ecPrivateKey: string | undefined;
    issuer: string;
    audience: string;
    accessTtlSeconds: number;
    refreshTtlSeconds: number;
  };
  rateLimit: { requests: number; windowSeconds: number };
  login: { maxFailures: number; windowSeconds: number; ipMaxFailures: number; accountMaxFailures: number };
  trustProxy: string | undefined;
  bootstrapAdmin: { email: string; password: string } | undefined;
  logLevel: (typeof logLevels)[number];
  bodyLimitBytes: number;
  argon2: { memoryCost: number; timeCost: number; parallelism: number };
  /** How many argon2 computations run at once (unset: defaultArgon2Concurrency()). */
  argon2Concurrency: number | undefined;
  /** A password check that would wait longer than this in the argon2 queue gets 503. */
  passwordQueueMaxWaitMs: number;
  /** Node's server: the whole request (headers and body) must arrive within this. */
  requestTimeoutSeconds: number;
  /** When set, GET /metrics needs `Authorization: Bearer <token>`. */
  metricsToken: string | undefined;
  /** When set, GET /metrics is served on a listener of its own (METRICS_HOST:METRICS_PORT) and not on the main one. */
  metricsListener: { port: number; host: string } | undefined;
  /** The sender of every mail. */
  mailFrom: string;
  /** The service's public origin (links in mail), without a trailing slash. */
  publicUrl: string;
  mail: {
    /** Unset: .eml files under DATA_DIR/mail (never in production). */
    smtpUrl: string | undefined;
    /** Link templates with `{token}` in the fragment. */
    verifyEmailUrl: string;
    resetPasswordUrl: string;
    perAddressPerHour: number;
  };
  emailVerification: 'off' | 'optional' | 'required';
  emailVerificationTtlSeconds: number;
  passwordResetTtlSeconds: number;
  mfa: {
    /** Holders of these roles must set up a second factor before anything else. */
    requiredRoles: string[];
    /** 32 bytes (base64 or hex) that encrypt TOTP secrets; unset outside production: generated in DATA_DIR. */
    encryptionKey: string | undefined;
    /** Earlier keys: they still open the secrets they sealed, until those are sealed again under the current one. */
    previousEncryptionKeys: string[];
  };
  webauthn: { rpId: string; rpName: string; origins: string[] };
  audit: { enabled: boolean; retentionDays: number };
  corsOrigins: string[];
  shutdownTimeoutSeconds: number;
  oauth: {
    /** A refresh token presented again this soon after its rotation, by the same client, answers again. */
    refreshGraceSeconds: number;
    /** How long a client's previous secret keeps working after a new one is made. */
    secretOverlapSeconds: number;
    /** A JSON file of clients applied at start (configuration as code). */
    clientsFile: string | undefined;
    /**
     * The value of the environment variable a declared client's `clientSecretEnv`
     * names (config.ts stays the one reader of the environment).
     */
    secretFromEnv: (name: string) => string | undefined;
  };
  /** How recent a sign-in proves a passwordless user (re-authentication). */
  reauthMaxAgeSeconds: number;
  /** A JSON file of upstream identity providers applied at start (configuration as code; secrets through oauth.secretFromEnv). */
  identityProvidersFile: string | undefined;
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** Passwords a production bootstrap admin may not have: short or one character class. */
function weakPassword(pw: string): boolean {
  const classes = [/[a-z]/, /[A-Z]/, /\d/, /[^A-Za-z0-9]/].filter((r) => r.test(pw)).length;
  return pw.length < 12 || classes < 3;
}

/** MFA_ENCRYPTION_KEY as 32 bytes (64 hex digits or base64 of 32 bytes), or null. */
export function parseMfaKey(text: string): Buffer | null {
  const t = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/_-]{43}=?$/.test(t) ? Buffer.from(t, 'base64') : null;
  return bytes?.length === 32 ? bytes : null;
}

/** What is wrong with JWT_RSA_PRIVATE_KEY's text (PEM or JWK), or null when it is an RSA key of 2048+ bits. */
function rsaKeyProblem(text: string): string | null {
  try {
    const t = text.trim();
    const key = t.startsWith('{') ? createPrivateKey({ key: JSON.parse(t) as NodeJwk, format: 'jwk' }) : createPrivateKey(t);
    if (key.asymmetricKeyType !== 'rsa') return 'must be an RSA private key';
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    return bits < 2048 ? `an RSA key of ${bits} bits: 2048 or more needed` : null;
  } catch {
    return 'not a private key (PEM or JWK)';
  }
}

/**
 * Parse an environment (process.env by default) into Config, or throw a
 * ConfigError naming every problem.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty strings mean "unset", as in most .env tooling.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';

  if ((e.BOOTSTRAP_ADMIN_EMAIL === undefined) !== (e.BOOTSTRAP_ADMIN_PASSWORD === undefined)) {
    problems.push('BOOTSTRAP_ADMIN_EMAIL and BOOTSTRAP_ADMIN_PASSWORD must be set together');
  }
  if (e.BOOTSTRAP_ADMIN_PASSWORD !== undefined && [...e.BOOTSTRAP_ADMIN_PASSWORD].length < 8) {
    problems.push('BOOTSTRAP_ADMIN_PASSWORD: must be at least 8 characters');
  }
  const publicUrl = (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/$/, '');
  for (const [name, template] of [
    ['VERIFY_EMAIL_URL', e.VERIFY_EMAIL_URL],
    ['RESET_PASSWORD_URL', e.RESET_PASSWORD_URL],
  ] as const) {
    if (template === undefined) continue;
    const hash = template.indexOf('#');
    if (!/^https?:\/\//.test(template)) problems.push(`${name}: must be an http(s) URL`);
    // In the fragment, the token never reaches a server log or a Referer.
    else if (hash < 0 || !template.slice(hash).includes('{token}'))
      problems.push(`${name}: must carry {token} in the fragment (…#token={token})`);
  }
  if (e.MFA_ENCRYPTION_KEY !== undefined && parseMfaKey(e.MFA_ENCRYPTION_KEY) === null) {
    problems.push('MFA_ENCRYPTION_KEY: must be 32 bytes, as 64 hex digits or base64 (openssl rand -base64 32)');
  }
  if (e.MFA_PREVIOUS_ENCRYPTION_KEYS?.some((k) => parseMfaKey(k) === null)) {
    problems.push('MFA_PREVIOUS_ENCRYPTION_KEYS: each key must be 32 bytes, as 64 hex digits or base64, separated by commas');
  }
  const publicOrigin = new URL(publicUrl);
  const webauthnOrigins = (e.WEBAUTHN_ORIGINS ?? [publicUrl]).map((o) => o.replace(/\/$/, ''));
  const rpId = e.WEBAUTHN_RP_ID ?? publicOrigin.hostname;
  for (const o of webauthnOrigins) {
    let host: string | undefined;
    try {
      const u = new URL(o);
      host = u.origin === o ? u.hostname : undefined;
    } catch {
      host = undefined;
    }
    if (host === undefined) problems.push(`WEBAUTHN_ORIGINS: ${o} is not an origin such as https://auth.example.com`);
    // WebAuthn: the RP ID must be the origin's host or a registrable suffix of it.
    else if (host !== rpId && !host.endsWith(`.${rpId}`)) problems.push(`WEBAUTHN_ORIGINS: ${o} is not on ${rpId} (WEBAUTHN_RP_ID)`);
  }
  const rsaProblem = e.JWT_RSA_PRIVATE_KEY === undefined ? null : rsaKeyProblem(e.JWT_RSA_PRIVATE_KEY);
  if (rsaProblem) problems.push(`JWT_RSA_PRIVATE_KEY: ${rsaProblem}`);
  if (e.METRICS_PORT !== undefined && e.METRICS_PORT === e.PORT) problems.push('METRICS_PORT: must differ from PORT');
  if (e.METRICS_HOST !== undefined && e.METRICS_PORT === undefined) problems.push('METRICS_HOST: needs METRICS_PORT');
  if (production) {
    if (!e.MFA_ENCRYPTION_KEY) problems.push('MFA_ENCRYPTION_KEY: required when NODE_ENV=production (it encrypts TOTP secrets)');
    if (!e.JWT_PRIVATE_KEY) problems.push('JWT_PRIVATE_KEY: required when NODE_ENV=production');
    if (!e.JWT_RSA_PRIVATE_KEY) problems.push('JWT_RSA_PRIVATE_KEY: required when NODE_ENV=production (it signs RS256 ID tokens)');
    if (!e.SMTP_URL) problems.push('SMTP_URL: required when NODE_ENV=production (mail must be delivered)');
    if (!publicUrl.startsWith('https://')) problems.push('PUBLIC_URL: must be an https:// origin when NODE_ENV=production');
    if (!e.METRICS_TOKEN && e.METRICS_PORT === undefined) {
      problems.push('METRICS_TOKEN or METRICS_PORT: one is required when NODE_ENV=production (GET /metrics must not be public)');
    }
    if (e.BOOTSTRAP_ADMIN_PASSWORD !== undefined && weakPassword(e.BOOTSTRAP_ADMIN_PASSWORD)) {
      problems.push('BOOTSTRAP_ADMIN_PASSWORD: too weak for production (12+ characters from 3 of: lower, upper, digit, symbol)');
    }
    if (e.DATABASE_URL) {
      let db: ReturnType<typeof parseDatabaseUrl> | undefined;
      try {
        db = parseDatabaseUrl(e.DATABASE_URL);
      } catch {
        problems.push('DATABASE_URL: not a valid URL');
      }
      // Every host of a list counts: one remote host is enough to need TLS.
      const remote = db?.hosts.some((h) => !LOCAL_HOSTS.has(h.replace(/:\d+$/, '')));
      if (db && remote && db.url.searchParams.get('sslmode') !== 'verify-full') {
        problems.push('DATABASE_URL: a remote database needs sslmode=verify-full when NODE_ENV=production');
      }
    }
  }
  for (const [name, file] of [
    ['DATABASE_CA_CERT', e.DATABASE_CA_CERT],
    ['DATABASE_CLIENT_CERT', e.DATABASE_CLIENT_CERT],
    ['DATABASE_CLIENT_KEY', e.DATABASE_CLIENT_KEY],
    ['OAUTH_CLIENTS_FILE', e.OAUTH_CLIENTS_FILE],
    ['IDENTITY_PROVIDERS_FILE', e.IDENTITY_PROVIDERS_FILE],
  ] as const) {
    if (file && !existsSync(file)) problems.push(`${name}: file not found: ${file}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    production,
    port: e.PORT,
    host: e.HOST,
    dataDir: e.DATA_DIR,
    database: {
      url: e.DATABASE_URL,
      caCert: e.DATABASE_CA_CERT,
      clientCert: e.DATABASE_CLIENT_CERT,
      clientKey: e.DATABASE_CLIENT_KEY,
      poolSize: e.DATABASE_POOL_SIZE,
      statementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
      lockTimeoutMs: e.DATABASE_LOCK_TIMEOUT_MS,
    },
    redisUrl: e.REDIS_URL,
    redisNearCache: e.REDIS_NEAR_CACHE === 'on',
    jwt: {
      privateKey: e.JWT_PRIVATE_KEY,
      publicKeys: e.JWT_PUBLIC_KEYS,
      rsaPrivateKey: e.JWT_RSA_PRIVATE_KEY,
      ecPrivateKey: e.JWT_EC_PRIVATE_KEY,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      accessTtlSeconds: e.ACCESS_TOKEN_TTL_SECONDS,
      refreshTtlSeconds: e.REFRESH_TOKEN_TTL_SECONDS,
    },
    rateLimit: { requests: e.RATE_LIMIT_REQUESTS, windowSeconds: e.RATE_LIMIT_WINDOW_SECONDS },
    login: {
      maxFailures: e.LOGIN_MAX_FAILURES,
      windowSeconds: e.LOGIN_FAILURE_WINDOW_SECONDS,
      ipMaxFailures: e.LOGIN_IP_MAX_FAILURES,
      accountMaxFailures: e.LOGIN_ACCOUNT_MAX_FAILURES,
    },
    trustProxy: e.TRUST_PROXY,
    bootstrapAdmin:
      e.BOOTSTRAP_ADMIN_EMAIL && e.BOOTSTRAP_ADMIN_PASSWORD
        ? { email: e.BOOTSTRAP_ADMIN_EMAIL, password: e.BOOTSTRAP_ADMIN_PASSWORD }
        : undefined,
    logLevel: e.LOG_LEVEL,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    argon2: { memoryCost: e.ARGON2_MEMORY_KIB, timeCost: e.ARGON2_TIME_COST, parallelism: e.ARGON2_PARALLELISM },
    argon2Concurrency: e.ARGON2_CONCURRENCY,
    passwordQueueMaxWaitMs: e.PASSWORD_QUEUE_MAX_WAIT_MS,
    requestTimeoutSeconds: e.REQUEST_TIMEOUT_SECONDS,
    metricsToken: e.METRICS_TOKEN,
    metricsListener: e.METRICS_PORT !== undefined ? { port: e.METRICS_PORT, host: e.METRICS_HOST ?? e.HOST } : undefined,
    mailFrom: e.MAIL_FROM,
    publicUrl,
    mail: {
      smtpUrl: e.SMTP_URL,
      verifyEmailUrl: e.VERIFY_EMAIL_URL ?? `${publicUrl}/verify-email#token={token}`,
      resetPasswordUrl: e.RESET_PASSWORD_URL ?? `${publicUrl}/reset-password#token={token}`,
      perAddressPerHour: e.MAIL_PER_ADDRESS_PER_HOUR,
    },
    emailVerification: e.EMAIL_VERIFICATION,
    emailVerificationTtlSeconds: e.EMAIL_VERIFICATION_TTL_SECONDS,
    passwordResetTtlSeconds: e.PASSWORD_RESET_TTL_SECONDS,
    mfa: {
      requiredRoles: e.MFA_REQUIRED_ROLES ?? [],
      encryptionKey: e.MFA_ENCRYPTION_KEY,
      previousEncryptionKeys: e.MFA_PREVIOUS_ENCRYPTION_KEYS ?? [],
    },
    webauthn: { rpId, rpName: e.WEBAUTHN_RP_NAME, origins: webauthnOrigins },
    audit: { enabled: e.AUDIT_LOG === 'on', retentionDays: e.AUDIT_RETENTION_DAYS },
    corsOrigins: e.CORS_ORIGINS ?? [],
    shutdownTimeoutSeconds: e.SHUTDOWN_TIMEOUT_SECONDS,
    oauth: {
      refreshGraceSeconds: e.OAUTH_REFRESH_GRACE_SECONDS,
      secretOverlapSeconds: e.OAUTH_SECRET_OVERLAP_SECONDS,
      clientsFile: e.OAUTH_CLIENTS_FILE,
      secretFromEnv: (name) => (Object.hasOwn(cleaned, name) ? cleaned[name] : undefined),
    },
    reauthMaxAgeSeconds: e.REAUTH_MAX_AGE_SECONDS,
    identityProvidersFile: e.IDENTITY_PROVIDERS_FILE,
  };
}

/**
 * Read `.env` from the working directory into the environment, if present.
 * Variables already set win (that is loadEnvFile's rule too).
 */
export function loadDotEnv(path = '.env'): void {
  if (existsSync(path) && typeof process.loadEnvFile === 'function') process.loadEnvFile(path);
}
