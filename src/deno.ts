// Deno entry: the shared boot served by Deno.serve. `npm run start:deno`.
import { getConnInfo } from 'hono/deno';
import { runMain, type Listen } from './boot.js';

// The slice of Deno's API used here (the project type-checks against Node's types).
declare const Deno: {
  serve(
    options: { port: number; hostname: string; onListen?: (addr: { port: number }) => void },
    handler: (req: Request, info: unknown) => Response | Promise<Response>,
  ): { addr: { port: number }; shutdown(): Promise<void> };
};

const denoListen: Listen = async (handle, { port, hostname }) => {
  // Deno passes the connection info (remoteAddr) as the handler's second argument: Hono's c.env.
  const server = Deno.serve({ port, hostname, onListen: () => {} }, handle.app.fetch);
  return {
    port: server.addr.port,
    async close(graceMs) {
      // shutdown() stops accepting and resolves once in-flight requests are answered. Past the
      // grace period we go on to flush and exit, which ends what is left.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([server.shutdown(), late]);
      clearTimeout(timer);
    },
  };
};

await runMain(denoListen, { remoteAddress: (c) => getConnInfo(c).remote.address });
