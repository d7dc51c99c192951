// The permission catalogue and the built-in roles' defaults: the single source
// for the guard, role seeding, GET /permissions, the OpenAPI document and tests.

export const PERMISSIONS = {
  'auth:register': 'Create an account (POST /auth/register)',
  'auth:refresh': 'Exchange a refresh token for new tokens (POST /auth/refresh)',
  'posts:read': 'List and read posts (GET /posts, GET /posts/:id)',
  'profile:read': 'Read one’s own profile, sessions and data export (GET /users/me, GET /users/me/...)',
  'profile:update': 'Change one’s own profile, end one’s sessions, delete one’s account (PUT and DELETE /users/me, /users/me/...)',
  'posts:create': 'Write posts (POST /posts)',
  'posts:delete:own': 'Delete one’s own posts (DELETE /posts/:id)',
  'posts:delete:any': 'Delete anyone’s posts (DELETE /posts/:id)',
  'users:read': 'Read other users (GET /users, GET /users/:id)',
  'users:roles:assign': 'Replace a user’s roles (PUT /users/:id/roles)',
  'roles:read': 'List roles and the permission catalogue (GET /roles, GET /permissions)',
  'roles:create': 'Create roles (POST /roles)',
  'roles:update': 'Change or delete roles (PUT /roles/:role/permissions, DELETE /roles/:role)',
  'admin:logs:read': 'Read the audit log (GET /admin/logs)',
  'admin:stats:read': 'Read usage statistics (GET /admin/stats)',
  'users:sessions:revoke': 'End all of a user’s sessions (DELETE /users/:id/sessions)',
  'users:mfa:reset': 'Remove a user’s second factors when they lost them (DELETE /users/:id/mfa)',
  'users:delete': 'Delete a user (DELETE /users/:id)',
  'clients:read': 'List and read OAuth clients and their sign-in statistics (GET /admin/clients, GET /admin/clients/:id)',
  'clients:manage': 'Register, change, rotate the secret of and delete OAuth clients (POST, PUT, DELETE /admin/clients...)',
  'idps:read': 'List and read the upstream identity providers (GET /admin/identity-providers...)',
  'idps:manage': 'Add, change and remove upstream identity providers (POST, PUT, DELETE /admin/identity-providers...)',
} as const;

export type Permission = keyof typeof PERMISSIONS;

export const ALL_PERMISSIONS = Object.keys(PERMISSIONS).sort() as Permission[];

export const isPermission = (p: string): p is Permission => Object.hasOwn(PERMISSIONS, p);

export const BUILT_IN_ROLES = ['guest', 'user', 'moderator', 'admin'] as const;
export type BuiltInRole = (typeof BUILT_IN_ROLES)[number];

/** The role that always holds every permission, present and future; it cannot be changed. */
export const SUPER_ROLE = 'admin';
/** Every caller, signed in or not, has this role. */
export const BASE_ROLE = 'guest';
/** What a newly registered user gets. */
export const DEFAULT_USER_ROLE = 'user';

const guest: Permission[] = ['auth:register', 'posts:read'];
const user: Permission[] = [...guest, 'auth:refresh', 'profile:read', 'profile:update', 'posts:create', 'posts:delete:own'];
const moderator: Permission[] = [...user, 'posts:delete:any', 'users:read'];

export const BUILT_IN_DEFAULTS: Record<BuiltInRole, { description: string; permissions: Permission[] }> = {
  guest: { description: 'Anyone, signed in or not', permissions: guest },
  user: { description: 'A registered user', permissions: user },
  moderator: { description: 'Moderates posts and reads users', permissions: moderator },
  admin: { description: 'Everything, always', permissions: ALL_PERMISSIONS },
};

/**
 * What the guest role may ever hold: permissions of routes meant for anyone.
 * Whatever guest holds, every anonymous request holds.
 */
const GUEST_PERMISSIONS = ['auth:register', 'posts:read'] as const satisfies readonly Permission[];
export const GUEST_ALLOWED: ReadonlySet<Permission> = new Set<Permission>(GUEST_PERMISSIONS);

/** A permission anonymous callers may hold. */
export type GuestPermission = (typeof GUEST_PERMISSIONS)[number];
/**
 * What a service client (a client_credentials token) may use besides guest's,
 * when its roles hold it: reading routes that need no "me". Every other
 * permission is a user permission, refused to clients whatever their roles hold.
 */
const CLIENT_PERMISSIONS = [
  'users:read',
  'roles:read',
  'admin:logs:read',
  'admin:stats:read',
  'clients:read',
  'idps:read',
] as const satisfies readonly Permission[];
export const CLIENT_ALLOWED: ReadonlySet<Permission> = new Set<Permission>(CLIENT_PERMISSIONS);

/** A permission a service client may hold through its roles. */
export type ClientPermission = (typeof CLIENT_PERMISSIONS)[number];
/** A permission only a signed-in user holds: a route behind one sees a user caller. */
export type UserPermission = Exclude<Permission, GuestPermission | ClientPermission>;
export const isUserPermission = (p: Permission): p is UserPermission => !GUEST_ALLOWED.has(p) && !CLIENT_ALLOWED.has(p);

/** Whether a role may hold this permission at all: guest only what GUEST_ALLOWED lists, whatever a row says. */
export const mayHold = (role: string, permission: Permission): boolean => role !== BASE_ROLE || GUEST_ALLOWED.has(permission);

/** Whoever changes roles or their permissions: what they hold themselves. */
export type Grantor = { roles: readonly string[]; permissions: ReadonlySet<string> };

/**
 * Delegated administration stays within what the grantor holds: the first of
 * these permissions that the grantor does not hold, if any.
 */
export function firstNotHeld(grantor: Grantor, permissions: Iterable<string>): string | undefined {
  for (const p of permissions) if (!grantor.permissions.has(p)) return p;
  return undefined;
}

/** One permission check's outcome (the access log audits it and counts it). */
export type Decision = { permission: Permission; allowed: boolean };

/** Deny by default: allowed only when the set holds the permission. */
export function can(granted: ReadonlySet<string>, permission: Permission): boolean {
  return granted.has(permission);
}
