// Is anyone else using the CPU? On a 2-core machine shared with test suites,
// a run that overlaps a foreign CPU hog measures the hog. Every measured run
// records the CPU its foreign processes used (everything that is not the bench,
// its children, Redis, or PostgreSQL working for the bench's own databases),
// and waits for a quiet machine first.
import { readdirSync, readFileSync } from 'node:fs';
import postgres from 'postgres';
import { adminUrl } from './pg.js';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux
const INFRA = new Set(['postgres', 'redis-server']);

type ProcTicks = Map<number, { comm: string; ppid: number; ticks: number }>;

function snapshot(): ProcTicks {
  const out: ProcTicks = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = s.lastIndexOf(')');
      const comm = s.slice(s.indexOf('(') + 1, close);
      const f = s.slice(close + 2).split(' ');
      // fields after comm: state(0) ppid(1) ... utime(11) stime(12)
      out.set(Number(d), { comm, ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

let pgAdmin: postgres.Sql | undefined;

/** PostgreSQL backends serving databases other than the bench's (other people's tests). */
async function foreignBackends(): Promise<Set<number>> {
  try {
    pgAdmin ??= postgres(adminUrl(), { max: 1, idle_timeout: 5, onnotice: () => {} });
    const rows = await pgAdmin<{ pid: number }[]>`
      select pid from pg_stat_activity
      where datname is not null and left(datname, 6) <> 'bench_' and pid <> pg_backend_pid()`;
    return new Set(rows.map((r) => r.pid));
  } catch {
    return new Set();
  }
}

function ours(snap: ProcTicks): Set<number> {
  const mine = new Set<number>([process.pid]);
  // Servers the bench measures but did not start (oidc.ts --issuer-pid): theirs is not foreign CPU.
  for (const pid of (process.env.BENCH_OWN_PIDS ?? '').split(',')) if (/^\d+$/.test(pid)) mine.add(Number(pid));
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, p] of snap) {
      if (!mine.has(pid) && mine.has(p.ppid)) {
        mine.add(pid);
        grew = true;
      }
    }
  }
  return mine;
}

export type Foreign = {
  cores: number;
  top: string[];
  /** Where the box's CPU went during the run, in cores: the bench's own side of it. */
  own: { generator: number; servers: number; postgres: number; redis: number };
};

/** CPU used by foreign processes between two snapshots, in cores. */
function foreignBetween(a: ProcTicks, b: ProcTicks, seconds: number, otherBackends: Set<number>): Foreign {
  const mine = ours(b);
  const per: { name: string; cores: number }[] = [];
  let ticks = 0;
  for (const [pid, p] of b) {
    if (mine.has(pid) || (INFRA.has(p.comm) && !otherBackends.has(pid))) continue;
    const d = p.ticks - (a.get(pid)?.ticks ?? 0);
    if (d <= 0) continue;
    ticks += d;
    per.push({ name: `${p.comm}(${pid})`, cores: d / TICKS_PER_SECOND / seconds });
  }
  per.sort((x, y) => y.cores - x.cores);
  const own = { generator: 0, servers: 0, postgres: 0, redis: 0 };
  for (const [pid, p] of b) {
    const d = p.ticks - (a.get(pid)?.ticks ?? 0);
    if (d <= 0) continue;
    const cores = d / TICKS_PER_SECOND / seconds;
    if (pid === process.pid) own.generator += cores;
    else if (mine.has(pid)) own.servers += cores;
    else if (p.comm === 'postgres' && !otherBackends.has(pid)) own.postgres += cores;
    else if (p.comm === 'redis-server') own.redis += cores;
  }
  const r2 = (v: number) => Math.round(v * 100) / 100;
  return {
    cores: r2(ticks / TICKS_PER_SECOND / seconds),
    top: per.slice(0, 3).map((p) => `${p.name} ${p.cores.toFixed(2)}`),
    own: { generator: r2(own.generator), servers: r2(own.servers), postgres: r2(own.postgres), redis: r2(own.redis) },
  };
}

export function startForeignMeter() {
  const a = snapshot();
  const t0 = Date.now();
  // Backends seen during the run (a short-lived test connection may be gone by the end).
  const backends = new Set<number>();
  const poll = async () => {
    for (const pid of await foreignBackends()) backends.add(pid);
  };
  void poll();
  const timer = setInterval(() => void poll(), 1_000);
  return {
    stop: async (): Promise<Foreign> => {
      clearInterval(timer);
      await poll();
      return foreignBetween(a, snapshot(), Math.max(0.001, (Date.now() - t0) / 1000), backends);
    },
  };
}

export async function closeMeter(): Promise<void> {
  await pgAdmin?.end({ timeout: 2 });
  pgAdmin = undefined;
}

/**
 * Wait until foreign processes use less than `maxCores` over a 2 s window, at
 * most `timeoutMs`. Returns the last reading (the caller records it).
 */
export async function waitForQuiet(maxCores: number, timeoutMs: number, log: (s: string) => void): Promise<Foreign> {
  const until = Date.now() + timeoutMs;
  let warned = false;
  for (;;) {
    const m = startForeignMeter();
    await new Promise((r) => setTimeout(r, 2_000));
    const f = await m.stop();
    if (f.cores < maxCores || Date.now() > until) {
      if (f.cores >= maxCores) log(`  machine still busy (${f.cores} foreign cores: ${f.top.join(', ')}); measuring anyway, flagged`);
      return f;
    }
    if (!warned) {
      log(`  waiting for a quiet machine: ${f.cores} foreign cores (${f.top.join(', ')})`);
      warned = true;
    }
  }
}
