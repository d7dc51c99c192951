// Is anyone else using the CPU? On a 2-core machine shared with test suites,
// a run that overlaps a foreign CPU hog measures the hog. Every measured run
// records the CPU its foreign processes used (everything that is not the bench,
// its children, PostgreSQL or Redis), and waits for a quiet machine first.
import { readdirSync, readFileSync } from 'node:fs';

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

function ours(snap: ProcTicks): Set<number> {
  const mine = new Set<number>([process.pid]);
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

export type Foreign = { cores: number; top: string[] };

/** CPU used by foreign processes between two snapshots, in cores. */
function foreignBetween(a: ProcTicks, b: ProcTicks, seconds: number): Foreign {
  const mine = ours(b);
  const per: { name: string; cores: number }[] = [];
  let ticks = 0;
  for (const [pid, p] of b) {
    if (mine.has(pid) || INFRA.has(p.comm)) continue;
    const d = p.ticks - (a.get(pid)?.ticks ?? 0);
    if (d <= 0) continue;
    ticks += d;
    per.push({ name: `${p.comm}(${pid})`, cores: d / TICKS_PER_SECOND / seconds });
  }
  per.sort((x, y) => y.cores - x.cores);
  return {
    cores: Math.round((ticks / TICKS_PER_SECOND / seconds) * 100) / 100,
    top: per.slice(0, 3).map((p) => `${p.name} ${p.cores.toFixed(2)}`),
  };
}

export function startForeignMeter() {
  const a = snapshot();
  const t0 = Date.now();
  return { stop: (): Foreign => foreignBetween(a, snapshot(), Math.max(0.001, (Date.now() - t0) / 1000)) };
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
    const f = m.stop();
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
