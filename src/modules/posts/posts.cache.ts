// The first page of /posts, the page every reader asks for, kept in-process as
// the JSON it is sent as. An entry is valid while the store's posts version
// (the named version `posts`, read with the caller's store reads) is the one it
// was built under; every post write, and every deleted user (their posts go
// with them), replaces that version, so all instances see a write on their
// next request. Without a version (store unreachable or emptied) the cache is
// bypassed. MAX_AGE_MS bounds what a write made outside the API (SQL by an
// operator) can leave visible.
import { randomUUID } from 'node:crypto';
import type { StoreRead } from '../../access/caller.js';
import { storeKeys, type Store } from '../../store/store.js';

const MAX_AGE_MS = 5_000;
const POSTS_VERSION = storeKeys.version('posts');

/** GET /posts reads the posts version with the caller's own storeKeys. */
export const postsVersionRead: StoreRead = { name: 'postsVersion', key: () => POSTS_VERSION };

/** After a post write commits: every instance's cached first page is out of date. */
export async function postsChanged(store: Store): Promise<void> {
  await store.set(POSTS_VERSION, randomUUID());
}

/** The first version, kept if another instance set one already. */
export async function ensurePostsVersion(store: Store): Promise<void> {
  await store.set(POSTS_VERSION, randomUUID(), { nx: true });
}

type Entry = { version: string; at: number; json: string };

export class FirstPageCache {
  private readonly pages = new Map<number, Entry>();
  private bytes = 0;

  constructor(
    private readonly now: () => number,
    /** Characters kept in all (the first pages of every `limit` asked for). */
    private readonly budget = 2_000_000,
  ) {}

  get(limit: number, version: string): string | undefined {
    const e = this.pages.get(limit);
    if (!e || e.version !== version || this.now() - e.at > MAX_AGE_MS) return undefined;
    return e.json;
  }

  set(limit: number, version: string, json: string): void {
    const old = this.pages.get(limit);
    if (old) {
      this.bytes -= old.json.length;
      this.pages.delete(limit);
    }
    if (json.length > this.budget) return;
    this.pages.set(limit, { version, at: this.now(), json });
    this.bytes += json.length;
    // Oldest first (Map keeps insertion order).
    for (const [k, e] of this.pages) {
      if (this.bytes <= this.budget) break;
      this.pages.delete(k);
      this.bytes -= e.json.length;
    }
  }
}
