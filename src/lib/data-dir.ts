// DATA_DIR holds the embedded database (its WAL has password hashes) and the
// generated signing key, so it is private to the service's user: directories
// 0700, files 0600, both for what is there at start and for what comes later.
import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeFS } from '@electric-sql/pglite/nodefs';

/** Permission bits never granted under DATA_DIR: all of group's and others'. */
const NOT_OWNER = 0o077;

export type PreparedDataDir = {
  /** False where the runtime cannot set the process umask: only the walk tightened modes. */
  umaskSet: boolean;
  /** Why not, e.g. Deno without sys permission for "umask". */
  umaskError?: string;
  /** Paths whose mode could not be tightened (owned by another user, read-only mount). */
  failed: string[];
};

/**
 * Create DATA_DIR (0700), tighten what an older version left in it (0755
 * directories, 0666 files: directories become 0700, regular files lose group
 * and other bits; symlinks are neither changed nor followed), then set the
 * process umask to 0o077 so that what this process creates later is private
 * from the start (key file, mail outbox, setup token).
 */
export function prepareDataDir(dir: string): PreparedDataDir {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const failed: string[] = [];
  try {
    // Follows a symlinked DATA_DIR (./data -> a volume): that is the operator's choice.
    chmodSync(dir, 0o700);
  } catch {
    failed.push(dir);
  }
  walk(dir, failed);
  const umaskError = setUmask(0o077);
  return umaskError === undefined ? { umaskSet: true, failed } : { umaskSet: false, umaskError, failed };
}

function walk(dir: string, failed: string[]): void {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    failed.push(dir);
    return;
  }
  for (const entry of entries) {
    // Dirent types come from lstat: a symlink is neither a directory nor a file here.
    const isDir = entry.isDirectory();
    if (!isDir && !entry.isFile()) continue;
    const path = join(dir, entry.name);
    try {
      const mode = lstatSync(path).mode & 0o7777;
      const want = isDir ? 0o700 : mode & 0o600;
      if (mode !== want) chmodSync(path, want);
    } catch {
      failed.push(path);
    }
    if (isDir) walk(path, failed);
  }
}

/**
 * process.umask, else Deno.umask; never throws. Returns why neither could set it:
 * Deno checks sys permission "umask" for both (granted by a bare --allow-sys).
 */
function setUmask(mask: number): string | undefined {
  let why = 'process.umask is not available';
  try {
    process.umask(mask);
    return undefined;
  } catch (err) {
    why = (err as Error).message;
  }
  try {
    const deno = (globalThis as { Deno?: { umask?: (mask?: number) => number } }).Deno;
    if (typeof deno?.umask === 'function') {
      deno.umask(mask);
      return undefined;
    }
  } catch (err) {
    why = (err as Error).message;
  }
  return why;
}

/** The part of Emscripten's NODEFS that decides the modes of what PGlite writes on disk. */
type EmscriptenNodeFs = {
  node_ops: {
    mknod(parent: unknown, name: string, mode: number, dev: number): unknown;
    setattr(node: unknown, attr: { mode?: number }): void;
  };
  stream_ops: { setattr(stream: unknown, attr: { mode?: number }): void };
};
const ownerOnlyApplied = Symbol('owner-only');

/**
 * PGlite's NodeFS over `dir`, with group and other bits stripped from every mode
 * it creates or sets on disk. The process umask is not enough there: Emscripten
 * applies its own umask (0o022) and then chmods each new file to that mode, so
 * PGlite's initial files come out 0666 and files Postgres opens with fopen 0644.
 */
export async function ownerOnlyPgliteFs(dir: string): Promise<NodeFS> {
  const { NodeFS } = await import('@electric-sql/pglite/nodefs');
  class OwnerOnlyNodeFS extends NodeFS {
    override async init(...args: Parameters<NodeFS['init']>) {
      const result = await super.init(...args);
      const opts = result.emscriptenOpts;
      opts.preRun = [(mod) => ownerOnly(mod.NODEFS as unknown as EmscriptenNodeFs), ...(opts.preRun ?? [])];
      return result;
    }
  }
  return new OwnerOnlyNodeFS(dir);
}

function ownerOnly(fs: EmscriptenNodeFs & { [ownerOnlyApplied]?: true }): void {
  if (fs[ownerOnlyApplied]) return;
  fs[ownerOnlyApplied] = true;
  const node = { ...fs.node_ops };
  const stream = { ...fs.stream_ops };
  const strip = (attr: { mode?: number }) => (attr.mode == null ? attr : { ...attr, mode: attr.mode & ~NOT_OWNER });
  // Every node shares these objects, so replacing their methods covers all files, old and new.
  fs.node_ops.mknod = (parent, name, mode, dev) => node.mknod(parent, name, mode & ~NOT_OWNER, dev);
  fs.node_ops.setattr = (n, attr) => node.setattr(n, strip(attr));
  fs.stream_ops.setattr = (s, attr) => stream.setattr(s, strip(attr));
}
