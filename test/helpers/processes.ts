// Real server processes started by tests on spare ports (fault injection).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { sleep } from './eventually.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** A throwaway redis-server that can be stopped and started again on the same port. */
export class RedisProcess {
  private proc: ChildProcess | undefined;
  constructor(readonly port: number) {}

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 100; i++) {
      if (await this.answers()) return;
      await sleep(50);
    }
    throw new Error(`redis-server did not start on ${this.port}`);
  }

  async answers(): Promise<boolean> {
    const { Socket } = await import('node:net');
    return new Promise((resolve) => {
      const s = new Socket();
      s.setTimeout(300);
      s.once('error', () => resolve(false));
      s.once('timeout', () => {
        s.destroy();
        resolve(false);
      });
      s.connect(this.port, '127.0.0.1', () => {
        s.write('PING\r\n');
        s.once('data', (d) => {
          s.destroy();
          resolve(d.toString().startsWith('+PONG'));
        });
      });
    });
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  /** Run a redis-cli command against this server. */
  async cli(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const c = spawn('redis-cli', ['-p', String(this.port), ...args]);
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.once('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`redis-cli exited ${code}`))));
    });
  }
}

/** A TCP relay that can be cut and restored: a network partition between the app and a server. */
export class TcpProxy {
  private server: import('node:net').Server | undefined;
  private sockets = new Set<import('node:net').Socket>();
  constructor(
    readonly port: number,
    private readonly target: number,
  ) {}

  async open(): Promise<void> {
    const net = await import('node:net');
    this.server = net.createServer((inbound) => {
      const outbound = net.connect(this.target, '127.0.0.1');
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  async cut(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}

/** The service itself as a child process (`node --import tsx src/server.ts`). */
export class ServerProcess {
  proc: ChildProcess | undefined;
  output = '';
  constructor(
    readonly port: number,
    readonly env: Record<string, string>,
  ) {}

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(timeoutMs = 15_000): Promise<number> {
    const started = Date.now();
    this.proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      env: { PATH: process.env.PATH ?? '', PORT: String(this.port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout!.on('data', (d) => (this.output += d));
    this.proc.stderr!.on('data', (d) => (this.output += d));
    while (Date.now() - started < timeoutMs) {
      if (this.proc.exitCode !== null) throw new Error(`server exited ${this.proc.exitCode}: ${this.output}`);
      try {
        if ((await fetch(`${this.url}/healthz`)).status === 200) return Date.now() - started;
      } catch {
        /* not listening yet */
      }
      await sleep(100);
    }
    throw new Error(`server did not answer /healthz within ${timeoutMs} ms: ${this.output}`);
  }

  /** Send a signal and wait for the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return p?.exitCode ?? null;
    return new Promise((resolve) => {
      p.once('exit', (code) => resolve(code));
      p.kill(signal);
    });
  }
}

/** A throwaway PostgreSQL cluster on a spare port (initdb refuses root, so it runs as `postgres`). */
export class PostgresProcess {
  readonly dir: string;
  constructor(readonly port: number) {
    this.dir = `/tmp/auth-pg-${port}`;
  }

  get url() {
    return `postgresql://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private async run(cmd: string): Promise<string> {
    const { execFile } = await import('node:child_process');
    const asPostgres = process.getuid?.() === 0;
    const [file, args] = asPostgres ? ['su', ['postgres', '-c', cmd]] : ['sh', ['-c', cmd]];
    return new Promise((resolve, reject) =>
      execFile(file, args as string[], { timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${cmd}: ${stderr || err.message}`)) : resolve(stdout),
      ),
    );
  }

  private bin(name: string): string {
    return `$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/${name}`;
  }

  async init(): Promise<void> {
    const { mkdirSync, rmSync, chownSync } = await import('node:fs');
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    if (process.getuid?.() === 0) {
      const { execFileSync } = await import('node:child_process');
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      chownSync(this.dir, uid, gid);
    }
    await this.run(`${this.bin('initdb')} -D ${this.dir}/data --auth=trust -U postgres >/dev/null`);
  }

  async start(): Promise<void> {
    await this.run(
      `${this.bin('pg_ctl')} -D ${this.dir}/data -l ${this.dir}/log -w -o "-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1" start >/dev/null`,
    );
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.run(`${this.bin('pg_ctl')} -D ${this.dir}/data -m ${mode} -w stop >/dev/null`);
  }

  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => {});
    const { rmSync } = await import('node:fs');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
