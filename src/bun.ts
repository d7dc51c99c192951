// Bun entry: the shared boot served by Bun.serve. `npm run start:bun`.
import { getConnInfo } from 'hono/bun';
import { runMain, type Listen } from './boot.js';

// The slice of Bun's API used here (the project type-checks against Node's types).
declare const Bun: {
  serve(options: { port: number; hostname: string; fetch: (req: Request, server: unknown) => Response | Promise<Response> }): {
    port: number;
    stop(closeActiveConnections?: boolean): Promise<void>;
  };
};

const bunListen: Listen = async (handle, { port, hostname }) => {
  // Bun passes its server as fetch's second argument: Hono's c.env, where getConnInfo finds requestIP().
  const server = Bun.serve({ port, hostname, fetch: handle.app.fetch });
  return {
    port: server.port,
    async close(graceMs) {
      // stop() stops accepting and resolves once in-flight requests are answered; stop(true) drops them.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
      if ((await Promise.race([server.stop(), late])) === 'late') await server.stop(true);
      clearTimeout(timer);
    },
  };
};

await runMain(bunListen, { remoteAddress: (c) => getConnInfo(c).remote.address });
