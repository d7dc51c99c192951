// `npm run certs`: a private CA plus node and client certificates, named the way
// CockroachDB's --certs-dir expects (ca.crt, node.crt/.key, client.<user>.crt/.key).
// The same files serve the PostgreSQL stand-in in CI: node.crt is its server
// certificate and a client certificate's CN is the role it logs in as.
//
// openssl does the X.509 work (it is on every machine this runs on, and on the
// Docker hosts); only portable options are used, so LibreSSL works too.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';

const HELP = `usage: npm run certs -- [options]

  --out DIR        where to write (default: certs/out)
  --force          overwrite existing files, CA included
  --keep-ca        reuse ca.crt/ca.key in DIR and re-issue node and client certificates
  --rotate-ca      new CA; ca.crt becomes new + old CA so old certificates still verify
                   during the rollout; node and client certificates are re-issued
  --users LIST     client certificates to make (default: root,app)
  --san NAME       extra subjectAltName for the node certificate (repeatable)
  --days N         node and client certificate lifetime (default: 365)
  --ca-days N      CA lifetime (default: 3650)
  -h, --help
`;

/** Names every node certificate answers to: local use, CI, and the compose services. */
const NODE_SANS = ['localhost', '127.0.0.1', '::1', 'roach1', 'roach2', 'roach3'];

type Options = {
  out: string;
  force: boolean;
  keepCa: boolean;
  rotateCa: boolean;
  users: string[];
  sans: string[];
  days: number;
  caDays: number;
};

const CLI_OPTIONS = {
  out: { type: 'string' },
  force: { type: 'boolean', default: false },
  'keep-ca': { type: 'boolean', default: false },
  'rotate-ca': { type: 'boolean', default: false },
  users: { type: 'string', default: 'root,app' },
  san: { type: 'string', multiple: true },
  days: { type: 'string', default: '365' },
  'ca-days': { type: 'string', default: '3650' },
  help: { type: 'boolean', short: 'h', default: false },
} satisfies ParseArgsConfig['options'];

function parseOptions(argv: string[]): Options {
  let values: ReturnType<typeof parseArgs<{ args: string[]; options: typeof CLI_OPTIONS; strict: true }>>['values'];
  try {
    ({ values } = parseArgs({ args: argv, options: CLI_OPTIONS, strict: true }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const here = dirname(fileURLToPath(import.meta.url));
  const positive = (name: string, v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--${name} must be a positive whole number of days`);
    return Number(v);
  };
  const users = values.users
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
  for (const u of users) {
    // The user name becomes a file name and a certificate CN: keep it to SQL identifiers.
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(u)) throw new UsageError(`--users: "${u}" is not a plain lower-case SQL user name`);
  }
  if (users.length === 0) throw new UsageError('--users: at least one user');
  if (values['keep-ca'] && values['rotate-ca']) throw new UsageError('--keep-ca and --rotate-ca exclude each other');
  for (const s of values.san ?? []) {
    if (!isIP(s) && !/^[A-Za-z0-9*]([A-Za-z0-9.-]{0,252})$/.test(s))
      throw new UsageError(`--san: "${s}" is neither an IP address nor a DNS name`);
  }
  return {
    out: resolve(values.out ?? join(here, 'out')),
    force: values.force,
    keepCa: values['keep-ca'],
    rotateCa: values['rotate-ca'],
    users,
    sans: [...new Set([...NODE_SANS, ...(values.san ?? [])])],
    days: positive('days', values.days),
    caDays: positive('ca-days', values['ca-days']),
  };
}

class UsageError extends Error {
  constructor(
    message: string,
    readonly showHelp = true,
  ) {
    super(message);
  }
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') throw new Error('openssl was not found on PATH; install it (Debian: apt-get install openssl)');
    throw new Error(`openssl ${args[0]} failed:\n${e.stderr?.toString() ?? e.message}`);
  }
}

function newKey(file: string, bits: number, cwd: string): void {
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${bits}`, '-out', file], cwd);
  chmodSync(join(cwd, file), 0o600);
}

/** A random positive 128-bit serial (RFC 5280: unique per CA, at most 20 octets). */
function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return `0x${b.toString('hex')}`;
}

function makeCa(work: string, days: number): void {
  writeFileSync(
    join(work, 'ca.cnf'),
    `[req]
distinguished_name = dn
prompt = no
[dn]
O = auth-system
CN = auth-system CA ${new Date().toISOString().slice(0, 10)}
[v3_ca]
basicConstraints = critical, CA:true
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
`,
  );
  newKey('ca.key', 4096, work);
  openssl(
    [
      'req',
      '-new',
      '-x509',
      '-config',
      'ca.cnf',
      '-extensions',
      'v3_ca',
      '-key',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      String(days),
      '-sha256',
      '-set_serial',
      serial(),
    ],
    work,
  );
}

/** Signs a leaf certificate with the CA in `work`; CockroachDB wants CN=node for nodes and CN=<user> for clients. */
function makeLeaf(work: string, name: string, cn: string, usage: 'node' | 'client', sans: string[], days: number): void {
  const san = sans.map((s) => (isIP(s) ? `IP:${s}` : `DNS:${s}`)).join(', ');
  writeFileSync(
    join(work, `${name}.cnf`),
    `[req]
distinguished_name = dn
prompt = no
[dn]
O = auth-system
CN = ${cn}
[ext]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
# Nodes also dial each other as the "node" user, so they need clientAuth too.
extendedKeyUsage = ${usage === 'node' ? 'serverAuth, clientAuth' : 'clientAuth'}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
${san ? `subjectAltName = ${san}\n` : ''}`,
  );
  newKey(`${name}.key`, 2048, work);
  openssl(['req', '-new', '-config', `${name}.cnf`, '-key', `${name}.key`, '-out', `${name}.csr`], work);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-set_serial',
      serial(),
      '-days',
      String(days),
      '-sha256',
      '-extfile',
      `${name}.cnf`,
      '-extensions',
      'ext',
      '-out',
      `${name}.crt`,
    ],
    work,
  );
}

function main(): void {
  const opts = parseOptions(process.argv.slice(2));
  const leaves = ['node', ...opts.users.map((u) => `client.${u}`)];
  const targets = ['ca.crt', 'ca.key', ...leaves.flatMap((l) => [`${l}.crt`, `${l}.key`])];

  mkdirSync(opts.out, { recursive: true, mode: 0o700 });
  const reuse = opts.keepCa || opts.rotateCa;
  if (reuse) {
    for (const f of ['ca.crt', 'ca.key']) {
      if (!existsSync(join(opts.out, f)))
        throw new UsageError(`${opts.keepCa ? '--keep-ca' : '--rotate-ca'} needs an existing ${join(opts.out, f)}`);
    }
  } else if (!opts.force) {
    const present = targets.filter((f) => existsSync(join(opts.out, f)));
    if (present.length > 0) {
      throw new UsageError(
        `refusing to overwrite ${present.join(', ')} in ${opts.out}\n` +
          '  --force replaces everything (a new CA: every node and client must get the new files),\n' +
          '  --keep-ca re-issues node and client certificates from the existing CA.',
        false,
      );
    }
  }

  // Everything is made in a private work folder beside the output and moved into
  // place only when all of it succeeded: a failed run leaves the old set intact.
  const work = mkdtempSync(join(opts.out, '.work-'));
  chmodSync(work, 0o700);
  try {
    let previousCa = '';
    if (opts.keepCa) {
      copyFileSync(join(opts.out, 'ca.crt'), join(work, 'ca.crt'));
      copyFileSync(join(opts.out, 'ca.key'), join(work, 'ca.key'));
    } else {
      if (opts.rotateCa) previousCa = readFileSync(join(opts.out, 'ca.crt'), 'utf8');
      makeCa(work, opts.caDays);
    }
    for (const leaf of leaves) {
      if (leaf === 'node') makeLeaf(work, 'node', 'node', 'node', opts.sans, opts.days);
      else makeLeaf(work, leaf, leaf.slice('client.'.length), 'client', [], opts.days);
    }
    if (previousCa) {
      // Trust both CAs until every node and client holds a certificate from the new one.
      writeFileSync(join(work, 'ca.crt'), `${readFileSync(join(work, 'ca.crt'), 'utf8').trimEnd()}\n${previousCa.trimEnd()}\n`);
      copyFileSync(join(opts.out, 'ca.crt'), join(work, 'ca.previous.crt'));
      targets.push('ca.previous.crt');
    }
    for (const f of targets) {
      chmodSync(join(work, f), f.endsWith('.key') ? 0o600 : 0o644);
      renameSync(join(work, f), join(opts.out, f));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  const what = opts.keepCa
    ? 're-issued from the existing CA'
    : opts.rotateCa
      ? 'issued from a new CA (ca.crt holds new + previous)'
      : 'written';
  process.stdout.write(
    `certificates ${what} in ${opts.out}:\n` +
      targets.map((f) => `  ${f}${f.endsWith('.key') ? '  (0600)' : ''}`).join('\n') +
      `\nnode subjectAltNames: ${opts.sans.join(', ')}\n` +
      'ca.key signs new certificates only: keep it off the database nodes and the app.\n',
  );
}

try {
  main();
} catch (err) {
  process.stderr.write(`certs: ${(err as Error).message}\n`);
  if (err instanceof UsageError && err.showHelp) process.stderr.write(`\n${HELP}`);
  process.exit(err instanceof UsageError ? 2 : 1);
}
