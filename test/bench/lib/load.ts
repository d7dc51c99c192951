// The load generator: autocannon, run in the bench's own process (the servers
// are separate processes). One call = an optional warm-up (discarded) and one
// measured run, reduced to the figures the report needs.
import autocannon, { type Options, type Request, type Result } from 'autocannon';
import { startForeignMeter, waitForQuiet, type Foreign } from './machine.js';
import type { Proc } from './proc.js';

const QUIET_MAX_CORES = Number(process.env.BENCH_QUIET_MAX_CORES ?? 0.15);
const QUIET_TIMEOUT_MS = Number(process.env.BENCH_QUIET_TIMEOUT_SECONDS ?? 180) * 1000;
const NOISY_RETRIES = Number(process.env.BENCH_NOISY_RETRIES ?? 2);
/** A run during which foreign processes used more CPU than this is noisy. */
export const NOISY_CORES = Number(process.env.BENCH_NOISY_CORES ?? 0.2);
let quietLog: (s: string) => void = (s) => console.log(s);
export const setLoadLog = (fn: (s: string) => void) => {
  quietLog = fn;
};

export type LoadFigures = {
  rps: number;
  p50: number;
  p99: number;
  max: number;
  total: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  durationS: number;
  connections: number;
  /** RSS of the target process at the end of the measured run, MB. */
  rssMb: number | null;
  /** CPU used by processes foreign to the bench during the run, in cores (noise). */
  foreignCores: number;
  foreignTop: string[];
  /** CPU of the bench's side during the run, in cores: load generator, servers it started, PostgreSQL for its databases, Redis. */
  cpu: Foreign['own'];
  /** How long the target took, after the run, to answer /readyz (a backlog of abandoned requests shows here). */
  drainMs?: number;
};

export type LoadSpec = {
  url: string;
  connections: number;
  durationS: number;
  warmupS?: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  requests?: Request[];
  overallRate?: number;
  /** Sampled for RSS at the end of the run. */
  target?: Proc;
  /** Repeats of a noisy run (default BENCH_NOISY_RETRIES); 0 for runs that cannot be repeated. */
  retries?: number;
};

function run(opts: Options): Promise<{ result: Result; instance: ReturnType<typeof autocannon> }> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(opts, (err, result) => (err ? reject(err) : resolve({ result, instance })));
  });
}

/** Start a run without waiting: returns the instance and a promise of figures. */
export function startLoad(spec: Omit<LoadSpec, 'warmupS'>): { done: Promise<LoadFigures>; stop(): void } {
  let inst: ReturnType<typeof autocannon> | undefined;
  const meter = startForeignMeter();
  const done = new Promise<LoadFigures>((resolve, reject) => {
    inst = autocannon(optionsOf(spec, spec.durationS), (err, result) => {
      if (err) return reject(err);
      meter.stop().then((foreign) => resolve(figuresOf(result, spec.connections, spec.target, foreign)), reject);
    });
  });
  return { done, stop: () => inst?.stop() };
}

function optionsOf(spec: LoadSpec, durationS: number): Options {
  return {
    url: spec.url,
    connections: spec.connections,
    duration: durationS,
    pipelining: 1,
    timeout: 10,
    ...(spec.method ? { method: spec.method } : {}),
    ...(spec.headers ? { headers: spec.headers } : {}),
    ...(spec.body !== undefined ? { body: spec.body } : {}),
    ...(spec.requests ? { requests: spec.requests } : {}),
    ...(spec.overallRate ? { overallRate: spec.overallRate } : {}),
  };
}

function figuresOf(r: Result, connections: number, target: Proc | undefined, foreign: Foreign): LoadFigures {
  const statusCodes: Record<string, number> = {};
  let total = 0;
  for (const [code, v] of Object.entries(r.statusCodeStats ?? {})) {
    statusCodes[code] = Number(v.count);
    total += Number(v.count);
  }
  return {
    rps: Math.round((total / r.duration) * 10) / 10,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
    total,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes,
    durationS: r.duration,
    connections,
    rssMb: target ? round1(target.rssMb()) : null,
    foreignCores: foreign.cores,
    foreignTop: foreign.top,
    cpu: foreign.own,
  };
}

const round1 = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);

/**
 * Requests the generator gave up on may still queue inside the service (for a
 * database connection). /readyz queries the database through the same pool, so
 * its answer means the backlog is gone and the next run starts clean.
 */
async function drain(target: Proc): Promise<number> {
  const t0 = Date.now();
  try {
    await fetch(`${target.url}/readyz`, { signal: AbortSignal.timeout(180_000) });
  } catch {
    // measured anyway
  }
  return Date.now() - t0;
}

/**
 * Warm up, then measure. Waits for a quiet machine first; a run that foreign
 * processes disturbed anyway is repeated (BENCH_NOISY_RETRIES) and the least
 * disturbed one is kept.
 */
export async function load(spec: LoadSpec): Promise<LoadFigures> {
  let best: LoadFigures | undefined;
  const retries = spec.retries ?? NOISY_RETRIES;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (spec.retries !== 0) await waitForQuiet(QUIET_MAX_CORES, QUIET_TIMEOUT_MS, quietLog);
    if (spec.warmupS && spec.warmupS > 0) await run(optionsOf(spec, spec.warmupS));
    const meter = startForeignMeter();
    const { result } = await run(optionsOf(spec, spec.durationS));
    const f = figuresOf(result, spec.connections, spec.target, await meter.stop());
    if (spec.target?.name.startsWith('svc') || spec.target?.name.startsWith('prof')) f.drainMs = await drain(spec.target);
    if (!best || f.foreignCores < best.foreignCores) best = f;
    if (f.foreignCores <= NOISY_CORES) break;
    if (attempt < retries) quietLog(`  noisy run (${f.foreignCores} foreign cores: ${f.foreignTop.join(', ')}): again`);
  }
  return best!;
}

/** Requests that rotate through values (tokens, bodies) per request. */
export function rotating<T>(values: T[], make: (v: T) => Request): Request[] {
  let i = 0;
  return [
    {
      setupRequest: (req) => ({ ...req, ...make(values[i++ % values.length]!) }),
    },
  ];
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};

/** The run whose rps is the median of the rounds (its latencies travel with it). */
export function medianRun(runs: LoadFigures[]): LoadFigures {
  const sorted = [...runs].sort((a, b) => a.rps - b.rps);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}
