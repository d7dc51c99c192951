// A TCP relay in front of Redis that tells a store's invalidation connections
// (their client names start with `auth-inv-`) from its data connection: the
// data connection's replies can be delayed, the invalidation connections'
// traffic from Redis held back (a stalled channel whose sockets stay open).
import net from 'node:net';

type Kind = 'data' | 'channel';

export class SplitProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly held: { to: net.Socket; chunk: Buffer }[] = [];
  /** Replies to data connections arrive this much later (order kept). */
  dataDelayMs = 0;
  private frozen = false;
  private holdMatch: ((chunk: Buffer) => boolean) | undefined;
  private onHeld: (() => void) | undefined;
  private readonly holding = new Set<net.Socket>();
  private readonly heldRequests: { to: net.Socket; chunk: Buffer }[] = [];

  constructor(
    readonly port: number,
    private readonly target: number,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async open(): Promise<void> {
    this.server = net.createServer((inbound) => {
      const outbound = net.connect(this.target, '127.0.0.1');
      let kind: Kind | undefined;
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on('close', () => {
          this.sockets.delete(s);
          inbound.destroy();
          outbound.destroy();
        });
        s.on('error', () => s.destroy());
      }
      inbound.on('data', (chunk: Buffer) => {
        // The first command names the connection (CLIENT SETNAME) when it has a name.
        kind ??= chunk.includes('auth-inv-') ? 'channel' : 'data';
        if (kind === 'data' && (this.holding.has(inbound) || this.holdMatch?.(chunk))) {
          this.holding.add(inbound);
          this.heldRequests.push({ to: outbound, chunk });
          this.onHeld?.();
          return;
        }
        outbound.write(chunk);
      });
      outbound.on('data', (chunk: Buffer) => {
        if (kind === 'channel' && this.frozen) this.held.push({ to: inbound, chunk });
        else if (kind === 'data' && this.dataDelayMs > 0) setTimeout(() => inbound.writable && inbound.write(chunk), this.dataDelayMs);
        else inbound.write(chunk);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  /** Hold back everything Redis sends to invalidation connections (sockets stay open). */
  freezeChannel(): void {
    this.frozen = true;
  }

  thawChannel(): void {
    this.frozen = false;
    for (const { to, chunk } of this.held.splice(0)) if (to.writable) to.write(chunk);
  }

  /**
   * Hold back what data connections send to Redis, from the first write that
   * `match` accepts on (that connection's later writes too, order kept);
   * resolves once something is held. Closing the relay drops what is held.
   */
  holdRequests(match: (chunk: Buffer) => boolean = () => true): Promise<void> {
    this.holdMatch = match;
    return new Promise((resolve) => {
      this.onHeld = () => {
        this.onHeld = undefined;
        resolve();
      };
    });
  }

  /** Send what was held on to Redis, and hold nothing more. */
  releaseRequests(): void {
    this.holdMatch = undefined;
    this.onHeld = undefined;
    this.holding.clear();
    for (const { to, chunk } of this.heldRequests.splice(0)) if (to.writable) to.write(chunk);
  }

  async close(): Promise<void> {
    this.holdMatch = undefined;
    this.onHeld = undefined;
    this.holding.clear();
    this.heldRequests.length = 0;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}
