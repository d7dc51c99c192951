// What an app is built from. Passed in, never imported as singletons, so tests
// can build several apps over one database and store.
import type { Config } from './config.js';
import type { Database } from './db/connect.js';
import type { Logger } from './lib/logger.js';
import type { KeyRing } from './security/tokens.js';
import type { Store } from './store/store.js';

export type Deps = {
  config: Config;
  database: Database;
  store: Store;
  keys: KeyRing;
  /** Milliseconds since the epoch; tests freeze or advance it. */
  clock: () => number;
  logger: Logger;
};

/** What route modules and services work with: the deps plus the app's own caches and writers. */
export type Runtime = Deps & {
  metrics: import('./audit/metrics.js').Metrics;
  audit: import('./audit/audit-log.js').AuditWriter;
  stats: import('./audit/stats.js').StatsCounters;
  roleCache: import('./security/role-cache.js').RoleCache;
  verifyToken: import('./security/tokens.js').TokenVerifier;
  /** Verified against for unknown emails, so they cost what a wrong password costs. */
  dummyHash: Promise<string>;
  sessionOptions: import('./security/session-state.js').SessionStateOptions;
};
