// What an app is built from. Passed in, never imported as singletons, so tests
// can build several apps over one database and store.
import type { AuditWriter } from './audit/audit-log.js';
import type { Metrics } from './lib/metrics.js';
import type { StatsCounters } from './stats/counters.js';
import type { Mailer } from './adapters/mail/mailer.js';
import type { OutboxSender } from './adapters/mail/outbox.js';
import type { BackchannelSender } from './adapters/backchannel/sender.js';
import type { EventOutbox, Transact } from './events/outbox.js';
import type { BackgroundTasks } from './lib/background.js';
import type { Config } from './config.js';
import type { Database } from './db/connect.js';
import type { Logger } from './lib/logger.js';
import type { RoleCache } from './access/role-cache.js';
import type { SessionStateOptions } from './access/session-state.js';
import type { TokenVerifier } from './security/access-tokens.js';
import type { KeyRing } from './security/key-ring.js';
import type { SecretBox } from './security/secret-box.js';
import type { Store } from './store/store.js';
import type { Contributions } from './lib/contributions.js';

export type Deps = {
  config: Config;
  database: Database;
  store: Store;
  /** JWT signing and verification keys. */
  keyRing: KeyRing;
  /** Milliseconds since the epoch; tests freeze or advance it. */
  clock: () => number;
  logger: Logger;
  /** One registry per app (tests build several in one process). */
  metrics: Metrics;
  /** Outbound mail (adapters/mail). */
  mailer: Mailer;
  /** Seals secrets kept at rest (TOTP secrets) under MFA_ENCRYPTION_KEY. */
  secrets: SecretBox;
};

/** What route modules and services work with: the deps plus the app's own caches and writers. */
export type AppServices = Deps & {
  audit: AuditWriter;
  stats: StatsCounters;
  roleCache: RoleCache;
  verifyToken: TokenVerifier;
  /** Verified against for unknown emails, so they cost what a wrong password costs. */
  dummyHash: Promise<string>;
  sessionOptions: SessionStateOptions;
  /**
   * The one way a service runs a state change: `svc.tx(async (tx, emit) => …)`,
   * SERIALIZABLE with counted retries; the events it emits commit with it and
   * are published after the commit.
   */
  tx: Transact;
  /** The event outbox behind `tx`, and its relay of what a writer could not publish. */
  events: EventOutbox;
  /** Sends what the mail outbox holds; woken by the relay of a mail.requested event. */
  outbox: OutboxSender;
  /** Sends queued back-channel logout tokens; woken by the relay of a backchannel.requested event. */
  backchannel: BackchannelSender;
  /** Work done after the response (enumeration-safe mail requests). */
  background: BackgroundTasks;
  /** What modules add to the account export and GET /admin/stats, registered before those routes are built. */
  contributions: Contributions;
};
