// Child processes of the bench: the service, the baseline servers. Each runs as
// its own process (never in the load generator's), logs to a file, and is
// measured from outside through /proc (RSS) so the measurement costs it nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export type Proc = {
  name: string;
  pid: number;
  url: string;
  logFile: string;
  /** Resident set size in MB, read from /proc (null once the process is gone). */
  rssMb(): number | null;
  /** SIGTERM, wait for the exit (SIGKILL after the timeout). Resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  exited: Promise<number | null>;
};

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export function rssMbOf(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `url` until it answers 2xx (or the process dies, or the timeout passes). */
async function waitReady(url: string, child: ChildProcess, timeoutMs: number, logFile: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before it was ready; see ${logFile}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`not ready after ${timeoutMs} ms (${last}); see ${logFile}`);
}

export async function startProc(opts: {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  port: number;
  readyPath: string;
  logFile: string;
  readyTimeoutMs?: number;
}): Promise<Proc> {
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  log.write(`# ${new Date().toISOString()} ${opts.command} ${opts.args.join(' ')}\n`);
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    // Only what the bench sets, plus PATH/HOME: a developer's shell or .env must not leak in.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then(() => log.end());
  const url = `http://127.0.0.1:${opts.port}`;
  try {
    await waitReady(url + opts.readyPath, child, opts.readyTimeoutMs ?? 60_000, opts.logFile);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${opts.name}: ${(err as Error).message}`);
  }
  const pid = child.pid!;
  return {
    name: opts.name,
    pid,
    url,
    logFile: opts.logFile,
    exited,
    rssMb: () => rssMbOf(pid),
    async stop(timeoutMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Samples a process's RSS every `everyMs` until stopped. */
export function sampleRss(proc: Proc, everyMs = 1_000) {
  const t0 = Date.now();
  const samples: { t: number; rssMb: number }[] = [];
  const take = () => {
    const v = proc.rssMb();
    if (v !== null) samples.push({ t: (Date.now() - t0) / 1000, rssMb: Math.round(v * 10) / 10 });
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    samples,
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}
