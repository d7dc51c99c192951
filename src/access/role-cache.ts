// Role -> permission sets, cached in-process. The cache is keyed by the roles
// version kept in the store (a random token replaced by every role change on any
// instance; never a counter, which a Redis that lost its data would repeat), so a
// change is in force on the very next request everywhere. Without a version
// (store unreachable or emptied) it reloads at most once a second.
import type { Db } from '../db/connect.js';
import { rolePermissions, roles } from '../db/schema.js';
import { ALL_PERMISSIONS, isPermission, mayHold, SUPER_ROLE, type Permission } from '../security/permissions.js';

const UNVERSIONED_TTL_MS = 1_000;

export class RoleCache {
  private perms = new Map<string, ReadonlySet<Permission>>();
  private unions = new Map<string, ReadonlySet<Permission>>();
  private version: string | null | undefined;
  private loadedAt = 0;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  /** Forget everything; the next lookup reloads from the database. */
  invalidate(): void {
    this.version = undefined;
  }

  private stale(version: string | null): boolean {
    if (this.version === undefined) return true;
    if (version === null) return this.version !== null || this.now() - this.loadedAt > UNVERSIONED_TTL_MS;
    return version !== this.version;
  }

  private async reload(version: string | null): Promise<void> {
    const [roleRows, permRows] = await Promise.all([
      this.db.select({ name: roles.name }).from(roles),
      this.db.select().from(rolePermissions),
    ]);
    const next = new Map<string, Set<Permission>>();
    for (const r of roleRows) next.set(r.name, new Set(r.name === SUPER_ROLE ? ALL_PERMISSIONS : []));
    for (const p of permRows) {
      if (!isPermission(p.permission) || p.roleName === SUPER_ROLE) continue;
      // Whatever a row says, anonymous callers never get more than GUEST_ALLOWED.
      if (!mayHold(p.roleName, p.permission)) continue;
      next.get(p.roleName)?.add(p.permission);
    }
    this.perms = next;
    this.unions = new Map();
    this.version = version;
    this.loadedAt = this.now();
  }

  private async ensure(version: string | null): Promise<void> {
    while (this.stale(version)) {
      if (!this.loading) {
        this.loading = this.reload(version).finally(() => {
          this.loading = undefined;
        });
      }
      await this.loading;
      // A reload for another version may have finished: loop re-checks.
      if (this.version === version) break;
    }
  }

  /** The union of the roles' permissions; unknown roles contribute nothing. */
  async permissionsFor(roleNames: readonly string[], version: string | null): Promise<ReadonlySet<Permission>> {
    await this.ensure(version);
    return this.union(roleNames);
  }

  /**
   * Load now, resolve later without I/O: for use inside a transaction, where
   * another query on the same embedded connection would wait for it forever.
   */
  async snapshot(version: string | null): Promise<(roleNames: readonly string[]) => ReadonlySet<Permission>> {
    await this.ensure(version);
    const perms = this.perms;
    return (roleNames) => {
      const s = new Set<Permission>();
      for (const r of roleNames) for (const p of perms.get(r) ?? []) s.add(p);
      return s;
    };
  }

  private union(roleNames: readonly string[]): ReadonlySet<Permission> {
    const key = roleNames.join(',');
    let set = this.unions.get(key);
    if (!set) {
      const s = new Set<Permission>();
      for (const r of roleNames) for (const p of this.perms.get(r) ?? []) s.add(p);
      set = s;
      if (this.unions.size > 1_000) this.unions.clear();
      this.unions.set(key, set);
    }
    return set;
  }
}
