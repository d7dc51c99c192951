// The usual setup of an integration file in one line: a database of the given
// backend and an app on it for the whole describe block, with a client.
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll } from 'vitest';
import type { Database } from '../../src/db/connect.js';
import { createTestApp, type TestApp } from './app.js';
import { client, type Call } from './http.js';
import { openDatabase, type Backend } from './services.js';

export type AppOptions = Omit<Parameters<typeof createTestApp>[0], 'database'>;

export type UsedApp = {
  /** The app (set by the beforeAll hook: read it inside tests and hooks). */
  readonly t: TestApp;
  /** Its database connection. */
  readonly database: Database;
  /** A client for the app, usable as soon as the beforeAll hook has run. */
  readonly call: Call;
};

/** Registers beforeAll/afterAll in the calling describe block. `opts` may be a function, evaluated in beforeAll. */
export function useTestApp(backend: Backend, opts: AppOptions | (() => AppOptions) = {}): UsedApp {
  let app: TestApp | undefined;
  let db: Awaited<ReturnType<typeof openDatabase>> | undefined;
  let calls: Call | undefined;
  const ready = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('useTestApp: the app is set up in beforeAll; read it inside a test or hook');
    return v;
  };

  beforeAll(async () => {
    db = await openDatabase(backend);
    app = await createTestApp({ ...(typeof opts === 'function' ? opts() : opts), database: db.database });
    calls = client(app);
  });
  afterAll(async () => {
    await app?.stop();
    await db?.dispose();
  });

  return {
    get t() {
      return ready(app);
    },
    get database() {
      return ready(db).database;
    },
    call: (...args) => ready(calls)(...args),
  };
}

/**
 * The same on PGlite, served by @hono/node-server on a free loopback port: for
 * behaviour that only the Node adapter's real sockets show (headers written on
 * the ServerResponse, bodies read from the IncomingMessage).
 */
export function useServedApp(opts: AppOptions | (() => AppOptions) = {}): UsedApp & { readonly base: string } {
  const used = useTestApp('pglite', opts);
  let server: ReturnType<typeof serve> | undefined;
  beforeAll(async () => {
    server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const s = serve({ fetch: used.t.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
  });
  afterAll(async () => {
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
  });
  return {
    get t() {
      return used.t;
    },
    get database() {
      return used.database;
    },
    call: used.call,
    get base() {
      if (!server) throw new Error('useServedApp: the server starts in beforeAll; read base inside a test or hook');
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
  };
}
