// Configuration: parsed once, every problem reported together.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { tlsFromUrl } from '../../src/db/connect.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { argon2Concurrency, defaultArgon2Concurrency, setArgon2Concurrency } from '../../src/security/passwords.js';

const problemsOf = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

// A valid MFA_ENCRYPTION_KEY: 32 bytes as base64 (what `openssl rand -base64 32` prints).
const MFA_KEY = Buffer.alloc(32, 7).toString('base64');
// What production needs beside the JWT key: mail, an https origin, the key that seals TOTP secrets, metrics that are not public,
// the provider's RSA key.
const PROD_MAIL = {
  JWT_RSA_PRIVATE_KEY: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  SMTP_URL: 'smtps://mailer:secret@smtp.example.com:465',
  PUBLIC_URL: 'https://auth.example.com',
  MFA_ENCRYPTION_KEY: MFA_KEY,
  METRICS_TOKEN: 'a-scraper-token-of-some-length',
};

describe('configuration', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 3000,
      host: '0.0.0.0',
      dataDir: './data',
      redisUrl: undefined,
      jwt: { issuer: 'auth-system', audience: 'auth-system', accessTtlSeconds: 900, refreshTtlSeconds: 2_592_000 },
      rateLimit: { requests: 300, windowSeconds: 60 },
      login: { maxFailures: 5, windowSeconds: 900, ipMaxFailures: 100, accountMaxFailures: 100 },
      logLevel: 'info',
      bodyLimitBytes: 65_536,
      oauth: { refreshGraceSeconds: 10, secretOverlapSeconds: 0, clientsFile: undefined },
      reauthMaxAgeSeconds: 300,
      identityProvidersFile: undefined,
      argon2: { memoryCost: 19_456, timeCost: 2, parallelism: 1 },
      audit: { enabled: true, retentionDays: 90 },
    });
    expect(c.database.url).toBeUndefined();
  });

  it('runs cores + 1 argon2 computations at once by default, leaving a libuv pool thread free; ARGON2_CONCURRENCY overrides', () => {
    expect(defaultArgon2Concurrency(2, 4)).toBe(3);
    expect(defaultArgon2Concurrency(1, 4)).toBe(2);
    expect(defaultArgon2Concurrency(8, 4)).toBe(3);
    expect(defaultArgon2Concurrency(8, 10)).toBe(9);
    expect(defaultArgon2Concurrency(4, 1)).toBe(1);
    expect(loadConfig({}).argon2Concurrency).toBeUndefined();
    expect(loadConfig({ ARGON2_CONCURRENCY: '5' }).argon2Concurrency).toBe(5);
    expect(problemsOf({ ARGON2_CONCURRENCY: '0' }).join('\n')).toMatch(/ARGON2_CONCURRENCY/);
    const before = argon2Concurrency();
    setArgon2Concurrency(7);
    expect(argon2Concurrency()).toBe(7);
    setArgon2Concurrency(before);
  });

  it('names every bad variable at once', () => {
    const problems = problemsOf({ PORT: 'abc', ACCESS_TOKEN_TTL_SECONDS: '-1', REDIS_URL: 'http://x', LOG_LEVEL: 'loud' });
    expect(problems.join('\n')).toMatch(/PORT/);
    expect(problems.join('\n')).toMatch(/ACCESS_TOKEN_TTL_SECONDS/);
    expect(problems.join('\n')).toMatch(/REDIS_URL/);
    expect(problems.join('\n')).toMatch(/LOG_LEVEL/);
  });

  it('needs SMTP_URL and an https PUBLIC_URL in production, and {token} in the fragment of link templates', () => {
    const prod = { NODE_ENV: 'production', JWT_PRIVATE_KEY: 'k', MFA_ENCRYPTION_KEY: MFA_KEY };
    const missing = problemsOf(prod).join('\n');
    expect(missing).toMatch(/SMTP_URL: required/);
    expect(missing).toMatch(/PUBLIC_URL: must be an https/);
    expect(problemsOf({ ...prod, SMTP_URL: 'smtp://mail', PUBLIC_URL: 'http://auth.example.com' }).join('\n')).toMatch(/PUBLIC_URL/);
    expect(problemsOf({ ...prod, ...PROD_MAIL })).toEqual([]);
    expect(problemsOf({ PUBLIC_URL: 'https://auth.example.com/path' }).join('\n')).toMatch(/PUBLIC_URL/);
    expect(problemsOf({ SMTP_URL: 'http://mail' }).join('\n')).toMatch(/SMTP_URL/);
    expect(problemsOf({ RESET_PASSWORD_URL: 'https://app.example.com/reset?token={token}' }).join('\n')).toMatch(/fragment/);
    expect(problemsOf({ VERIFY_EMAIL_URL: 'https://app.example.com/verify#done' }).join('\n')).toMatch(/fragment/);
    expect(problemsOf({ VERIFY_EMAIL_URL: 'https://app.example.com/verify#token={token}' })).toEqual([]);
    const c = loadConfig({ PORT: '4000' });
    expect(c.publicUrl).toBe('http://localhost:4000');
    expect(c.mail.resetPasswordUrl).toBe('http://localhost:4000/reset-password#token={token}');
    expect(c.mail.verifyEmailUrl).toBe('http://localhost:4000/verify-email#token={token}');
    expect(c.emailVerification).toBe('optional');
    expect(loadConfig({ PUBLIC_URL: 'https://auth.example.com/' }).publicUrl).toBe('https://auth.example.com');
  });

  it('refuses public metrics in production: METRICS_TOKEN or METRICS_PORT is needed, named with the other problems', () => {
    const { METRICS_TOKEN: _, ...withoutToken } = PROD_MAIL;
    const prod = { ...withoutToken, NODE_ENV: 'production', JWT_PRIVATE_KEY: 'k' };
    const refused = 'METRICS_TOKEN or METRICS_PORT: one is required when NODE_ENV=production (GET /metrics must not be public)';
    expect(problemsOf(prod)).toEqual([refused]);
    const { JWT_PRIVATE_KEY: __, ...alsoNoKey } = prod;
    expect(problemsOf(alsoNoKey)).toEqual(['JWT_PRIVATE_KEY: required when NODE_ENV=production', refused]);
    // Either one will do.
    expect(problemsOf({ ...prod, METRICS_TOKEN: 'a-scraper-token-of-some-length' })).toEqual([]);
    expect(problemsOf({ ...prod, METRICS_PORT: '9464' })).toEqual([]);
    expect(loadConfig({ ...prod, METRICS_PORT: '9464' }).metricsListener).toEqual({ port: 9464, host: '0.0.0.0' });
    expect(loadConfig({ ...prod, HOST: '127.0.0.1', METRICS_PORT: '9464' }).metricsListener).toEqual({ port: 9464, host: '127.0.0.1' });
    expect(loadConfig({ METRICS_PORT: '9464', METRICS_HOST: '10.0.0.5' }).metricsListener).toEqual({ port: 9464, host: '10.0.0.5' });
    // Outside production, public metrics stay the default (on the main listener).
    expect(loadConfig({}).metricsListener).toBeUndefined();
    expect(problemsOf({ METRICS_PORT: '3000' })).toEqual(['METRICS_PORT: must differ from PORT']);
    expect(problemsOf({ METRICS_HOST: '127.0.0.1' })).toEqual(['METRICS_HOST: needs METRICS_PORT']);
    for (const bad of ['0', '65536', 'abc']) expect(problemsOf({ METRICS_PORT: bad }).join('\n'), bad).toMatch(/^METRICS_PORT: /);
  });

  it('refuses unsafe production settings, listing each', () => {
    const problems = problemsOf({
      NODE_ENV: 'production',
      DATABASE_URL: 'postgresql://app@db.example.com:26257/auth?sslmode=require',
      BOOTSTRAP_ADMIN_EMAIL: 'admin@example.com',
      BOOTSTRAP_ADMIN_PASSWORD: 'password123',
    }).join('\n');
    expect(problems).toMatch(/JWT_PRIVATE_KEY/);
    expect(problems).toMatch(/JWT_RSA_PRIVATE_KEY: required/);
    expect(problems).toMatch(/verify-full/);
    expect(problems).toMatch(/BOOTSTRAP_ADMIN_PASSWORD/);
    expect(problems).toMatch(/MFA_ENCRYPTION_KEY: required/);
    expect(problems).toMatch(/METRICS_TOKEN or METRICS_PORT/);
  });

  it('needs a 32-byte MFA_ENCRYPTION_KEY in production, and WebAuthn origins on the relying party', () => {
    const prod = { ...PROD_MAIL, NODE_ENV: 'production', JWT_PRIVATE_KEY: 'k' };
    expect(problemsOf(prod)).toEqual([]);
    // Production without the key is refused; outside production it is optional (generated into DATA_DIR).
    const { MFA_ENCRYPTION_KEY: _, ...withoutKey } = prod;
    expect(problemsOf(withoutKey)).toEqual(['MFA_ENCRYPTION_KEY: required when NODE_ENV=production (it encrypts TOTP secrets)']);
    expect(loadConfig({}).mfa.encryptionKey).toBeUndefined();
    // 32 bytes as 64 hex digits or as base64; any other length is refused, in production or not.
    const hex = 'a1'.repeat(32);
    expect(problemsOf({ ...prod, MFA_ENCRYPTION_KEY: hex })).toEqual([]);
    expect(loadConfig({ MFA_ENCRYPTION_KEY: hex }).mfa.encryptionKey).toBe(hex);
    for (const bad of [
      'a1'.repeat(31),
      'a1'.repeat(33),
      Buffer.alloc(16, 1).toString('base64'),
      Buffer.alloc(48, 1).toString('base64'),
      'not a key',
    ]) {
      expect(problemsOf({ ...prod, MFA_ENCRYPTION_KEY: bad }).join('\n'), bad).toMatch(/MFA_ENCRYPTION_KEY: must be 32 bytes/);
      expect(problemsOf({ MFA_ENCRYPTION_KEY: bad }).join('\n'), bad).toMatch(/MFA_ENCRYPTION_KEY: must be 32 bytes/);
    }
    // Earlier keys for a rotation: the same format, comma-separated; one bad key is named.
    expect(loadConfig({}).mfa.previousEncryptionKeys).toEqual([]);
    expect(loadConfig({ MFA_PREVIOUS_ENCRYPTION_KEYS: ` ${hex}, ${MFA_KEY} ` }).mfa.previousEncryptionKeys).toEqual([hex, MFA_KEY]);
    expect(problemsOf({ ...prod, MFA_PREVIOUS_ENCRYPTION_KEYS: `${hex},${'a1'.repeat(31)}` })).toEqual([
      'MFA_PREVIOUS_ENCRYPTION_KEYS: each key must be 32 bytes, as 64 hex digits or base64, separated by commas',
    ]);
    // Defaults: the relying party is PUBLIC_URL's host, the one allowed origin PUBLIC_URL itself.
    const c = loadConfig({ PUBLIC_URL: 'https://auth.example.com/' });
    expect(c.webauthn).toEqual({ rpId: 'auth.example.com', rpName: 'auth-system', origins: ['https://auth.example.com'] });
    expect(loadConfig({ PORT: '4000' }).webauthn).toMatchObject({ rpId: 'localhost', origins: ['http://localhost:4000'] });
    // An RP ID that is a registrable suffix of the origins' hosts, and several origins.
    const wide = loadConfig({
      PUBLIC_URL: 'https://auth.example.com',
      WEBAUTHN_RP_ID: 'example.com',
      WEBAUTHN_ORIGINS: 'https://auth.example.com, https://app.example.com',
      WEBAUTHN_RP_NAME: 'Example',
    });
    expect(wide.webauthn).toEqual({
      rpId: 'example.com',
      rpName: 'Example',
      origins: ['https://auth.example.com', 'https://app.example.com'],
    });
    // An origin not on the RP ID is refused, named.
    expect(problemsOf({ PUBLIC_URL: 'https://auth.example.com', WEBAUTHN_ORIGINS: 'https://evil.example.net' })).toEqual([
      'WEBAUTHN_ORIGINS: https://evil.example.net is not on auth.example.com (WEBAUTHN_RP_ID)',
    ]);
    expect(problemsOf({ WEBAUTHN_RP_ID: 'auth.example.com', WEBAUTHN_ORIGINS: 'https://notauth.example.com' }).join('\n')).toMatch(
      /not on auth\.example\.com/,
    );
    // The default origin (PUBLIC_URL) must be on an RP ID that is set explicitly.
    expect(problemsOf({ PUBLIC_URL: 'https://auth.example.com', WEBAUTHN_RP_ID: 'other.example' }).join('\n')).toMatch(
      /WEBAUTHN_ORIGINS: https:\/\/auth\.example\.com is not on other\.example/,
    );
    expect(problemsOf({ WEBAUTHN_ORIGINS: 'https://auth.example.com/path' }).join('\n')).toMatch(/is not an origin/);
  });

  it('accepts a safe production setup and a local database without TLS', () => {
    expect(
      problemsOf({
        ...PROD_MAIL,
        NODE_ENV: 'production',
        JWT_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----',
        DATABASE_URL: 'postgresql://app@db.example.com:26257/auth?sslmode=verify-full',
        BOOTSTRAP_ADMIN_EMAIL: 'admin@example.com',
        BOOTSTRAP_ADMIN_PASSWORD: 'Str0ng-and-Long!',
      }),
    ).toEqual([]);
    expect(
      problemsOf({ ...PROD_MAIL, NODE_ENV: 'production', JWT_PRIVATE_KEY: 'k', DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/x' }),
    ).toEqual([]);
  });

  it('takes a list of database hosts, and needs verify-full in production when any of them is remote', () => {
    const list = 'postgresql://app@roach1:26257,roach2:26257,roach3:26257/auth';
    expect(problemsOf({ ...PROD_MAIL, NODE_ENV: 'production', JWT_PRIVATE_KEY: 'k', DATABASE_URL: `${list}?sslmode=verify-full` })).toEqual(
      [],
    );
    expect(problemsOf({ ...PROD_MAIL, NODE_ENV: 'production', JWT_PRIVATE_KEY: 'k', DATABASE_URL: list }).join('\n')).toMatch(
      /verify-full/,
    );
    const mixed = 'postgresql://app@127.0.0.1:26257,db.example.com:26257/auth';
    expect(problemsOf({ ...PROD_MAIL, NODE_ENV: 'production', JWT_PRIVATE_KEY: 'k', DATABASE_URL: mixed }).join('\n')).toMatch(
      /verify-full/,
    );
    // The list reaches the driver intact; TLS parameters become options, each host named by the driver.
    const t = tlsFromUrl({ url: `${list}?sslmode=verify-full&application_name=x` });
    expect(t.url).toBe('postgresql://app@roach1:26257,roach2:26257,roach3:26257/auth?application_name=x');
    expect(t.ssl).toMatchObject({ rejectUnauthorized: true });
    expect((t.ssl as { servername?: string }).servername).toBeUndefined();
    expect(tlsFromUrl({ url: 'postgresql://app@roach1:26257/auth?sslmode=verify-full' }).ssl).toMatchObject({ servername: 'roach1' });
  });

  it('stops the service with one message naming each problem and a non-zero exit', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      env: { PATH: process.env.PATH, PORT: 'abc', ACCESS_TOKEN_TTL_SECONDS: '-1' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/invalid configuration/);
    expect(run.stderr).toMatch(/PORT/);
    expect(run.stderr).toMatch(/ACCESS_TOKEN_TTL_SECONDS/);
    expect(run.stderr.match(/invalid configuration/g)).toHaveLength(1);
  });
});
