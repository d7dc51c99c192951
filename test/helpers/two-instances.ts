// Two app instances over one PostgreSQL database and one Redis (two store
// connections on one key prefix, one key ring): how cross-instance behaviour
// is tested. Registers beforeAll/afterAll in the calling describe block.
import { afterAll, beforeAll } from 'vitest';
import { prepareDatabase } from '../../src/app.js';
import type { RedisStore } from '../../src/store/redis.js';
import { createTestApp, redisStore, testConfig, type TestApp } from './app.js';
import { client, type Call } from './http.js';
import { openDatabase } from './services.js';

export type TwoInstances = {
  readonly a: TestApp;
  readonly b: TestApp;
  readonly callA: Call;
  readonly callB: Call;
  readonly stores: readonly RedisStore[];
};

export function useTwoInstances(opts: { overrides?: Record<string, string>; clock?: () => number } = {}): TwoInstances {
  let a: TestApp | undefined;
  let b: TestApp | undefined;
  let calls: [Call, Call] | undefined;
  let stores: RedisStore[] = [];
  let dispose: (() => Promise<void>) | undefined;
  const ready = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('useTwoInstances: the apps are set up in beforeAll; read them inside a test or hook');
    return v;
  };

  beforeAll(async () => {
    const db = await openDatabase('postgres');
    dispose = db.dispose;
    const prefix = `test:${Math.random().toString(36).slice(2)}:`;
    stores = [redisStore(prefix), redisStore(prefix)];
    await Promise.all(stores.map((s) => s.ready()));
    const config = testConfig(opts.overrides);
    const clock = opts.clock ? { clock: opts.clock } : {};
    a = await createTestApp({ database: db.database, store: stores[0], config, ...clock });
    b = await createTestApp({ database: db.database, store: stores[1], config, keyRing: a.deps.keyRing, prepare: false, ...clock });
    await prepareDatabase(b.deps);
    calls = [client(a), client(b)];
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all(stores.map((s) => s.close()));
    await dispose?.();
  });

  return {
    get a() {
      return ready(a);
    },
    get b() {
      return ready(b);
    },
    get callA() {
      return ready(calls)[0];
    },
    get callB() {
      return ready(calls)[1];
    },
    get stores() {
      return stores;
    },
  };
}
