// Apache httpd with mod_auth_openidc (Debian's `apache2` and
// `libapache2-mod-auth-openidc`, installed by .ci/run) as a relying party of an
// OpenID provider: the most common "protect an app at the proxy" setup, with no
// code of ours in it. One foreground process (-X) on its own port, with its own
// ServerRoot and configuration in a temporary directory. /protected needs an
// OpenID Connect sign-in; /protected/index.shtml prints what the module passes
// to the app (REMOTE_USER and the email claim), one per line.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './eventually.js';
import { freePort } from './processes.js';

const APACHE = process.env.APACHE_BIN ?? '/usr/sbin/apache2';
const MODULES = process.env.APACHE_MODULES_DIR ?? '/usr/lib/apache2/modules';

/** Why Apache with mod_auth_openidc cannot run here (null when it can): tests skip with this reason. */
export function apacheUnavailable(): string | null {
  if (!existsSync(APACHE)) return `${APACHE} is not installed (apt-get install apache2 libapache2-mod-auth-openidc; .ci/run does)`;
  if (!existsSync(join(MODULES, 'mod_auth_openidc.so')))
    return `${MODULES}/mod_auth_openidc.so is missing (apt-get install libapache2-mod-auth-openidc)`;
  return null;
}

export type ApacheRp = {
  /** http://127.0.0.1:<port> */
  url: string;
  /** The protected page: REMOTE_USER=<...> and EMAIL=<...> lines once signed in. */
  protectedUrl: string;
  /** The OIDCRedirectURI (register it with the provider). */
  redirectUri: string;
  /** The module's logout URL: ends the local session, then RP-initiated logout at the provider. */
  logoutUrl(returnTo?: string): string;
  /** The server's error log so far (mod_auth_openidc logs at info): for failure messages. */
  errorLog(): string;
  stop(): Promise<void>;
};

export type ApacheOptions = {
  /** The provider's issuer (discovery at <issuer>/.well-known/openid-configuration). */
  issuer: string;
  clientId: string;
  clientSecret?: string;
  /** Default "openid email profile". */
  scope?: string;
  /** client_secret_basic (default), client_secret_post or none. */
  tokenEndpointAuth?: 'client_secret_basic' | 'client_secret_post' | 'none';
  port?: number;
  /** More mod_auth_openidc directives (one per line), e.g. OIDCIDTokenSignedResponseAlg ES256. */
  extra?: string[];
};

/** The redirect URI an Apache RP on `port` uses: known before it starts, so clients can be registered first. */
export const apacheRedirectUri = (port: number) => `http://127.0.0.1:${port}/protected/redirect_uri`;

export async function startApache(opts: ApacheOptions): Promise<ApacheRp> {
  const why = apacheUnavailable();
  if (why) throw new Error(why);
  const port = opts.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const redirectUri = apacheRedirectUri(port);
  const root = await mkdtemp(join(tmpdir(), 'apache-rp-'));
  await mkdir(join(root, 'htdocs/protected'), { recursive: true });
  await mkdir(join(root, 'run'));
  await mkdir(join(root, 'cache'));
  await writeFile(
    join(root, 'htdocs/protected/index.shtml'),
    'REMOTE_USER=<!--#echo var="REMOTE_USER" -->\nEMAIL=<!--#echo var="OIDC_CLAIM_email" -->\nNAME=<!--#echo var="OIDC_CLAIM_name" -->\n',
  );
  await writeFile(join(root, 'htdocs/index.html'), 'public\n');
  await writeFile(join(root, 'mime.types'), 'text/html html\n');
  // Running as root, Apache's children switch to User/Group, which must read the tree.
  const asRoot = process.getuid?.() === 0;
  const user = asRoot ? accountFor() : null;
  const config = [
    `ServerRoot "${root}"`,
    `ServerName 127.0.0.1:${port}`,
    `Listen 127.0.0.1:${port}`,
    `PidFile "${join(root, 'run/httpd.pid')}"`,
    `DefaultRuntimeDir "${join(root, 'run')}"`,
    `ErrorLog "${join(root, 'error.log')}"`,
    'LogLevel warn auth_openidc:info',
    ...(user ? [`User ${user}`, `Group ${user}`] : []),
    ...['mpm_prefork', 'authn_core', 'authz_core', 'authz_user', 'mime', 'include', 'auth_openidc'].map(
      (m) => `LoadModule ${m}_module "${join(MODULES, `mod_${m}.so`)}"`,
    ),
    // One process (-X) serves one connection at a time: an idle keep-alive connection
    // (the readiness probe's) would hold the next client for KeepAliveTimeout.
    'KeepAlive Off',
    'StartServers 1',
    'MaxRequestWorkers 8',
    `DocumentRoot "${join(root, 'htdocs')}"`,
    `TypesConfig "${join(root, 'mime.types')}"`,
    'AddType text/plain .shtml',
    'AddOutputFilter INCLUDES .shtml',
    `<Directory "${join(root, 'htdocs')}">`,
    '  Options +IncludesNOEXEC',
    '  Require all granted',
    '</Directory>',
    `OIDCProviderMetadataURL ${opts.issuer}/.well-known/openid-configuration`,
    `OIDCClientID ${opts.clientId}`,
    ...(opts.clientSecret ? [`OIDCClientSecret ${opts.clientSecret}`] : []),
    `OIDCProviderTokenEndpointAuth ${opts.tokenEndpointAuth ?? (opts.clientSecret ? 'client_secret_basic' : 'none')}`,
    `OIDCRedirectURI ${redirectUri}`,
    `OIDCCryptoPassphrase ${randomBytes(24).toString('base64url')}`,
    `OIDCScope "${opts.scope ?? 'openid email profile'}"`,
    'OIDCPKCEMethod S256',
    'OIDCRemoteUserClaim sub',
    ...(opts.extra ?? []),
    '<Location /protected>',
    '  AuthType openid-connect',
    '  Require valid-user',
    '</Location>',
    '',
  ].join('\n');
  const configFile = join(root, 'httpd.conf');
  await writeFile(configFile, config);
  if (user) await chmod(root, 0o755);

  const child: ChildProcess = spawn(APACHE, ['-X', '-d', root, '-f', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' },
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const errorLog = () => {
    try {
      return readFileSync(join(root, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      // In -X (one process) mode a SIGHUP ends Apache at once; SIGTERM takes 3 s.
      child.kill('SIGHUP');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(root, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = `${output}\n${errorLog()}`;
      await stop();
      throw new Error(`apache2 exited (${child.exitCode ?? child.signalCode}) at start:\n${log}`);
    }
    try {
      const res = await fetch(`${url}/index.html`, { signal: AbortSignal.timeout(1_000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (i > 100) {
      const log = `${output}\n${errorLog()}`;
      await stop();
      throw new Error(`apache2 did not answer on ${url}:\n${log}`);
    }
    await sleep(100);
  }
  return {
    url,
    protectedUrl: `${url}/protected/index.shtml`,
    redirectUri,
    logoutUrl: (returnTo = `${url}/index.html`) => `${redirectUri}?logout=${encodeURIComponent(returnTo)}`,
    errorLog,
    stop,
  };
}

/** The unprivileged account Apache's children run as when started by root. */
function accountFor(): string {
  for (const name of ['www-data', 'daemon', 'nobody']) {
    if (spawnSync('id', ['-u', name]).status === 0) return name;
  }
  throw new Error('no unprivileged account for Apache (www-data, daemon or nobody)');
}
