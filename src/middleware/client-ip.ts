// The client's address. X-Forwarded-For is believed only as far as TRUST_PROXY
// says (a hop count, or addresses/CIDRs of trusted proxies); otherwise the
// socket address is the client. A forwarded entry that is not an IP address
// is not believed: the nearest trusted hop is the client then. The address is
// kept in its canonical spelling; limits count under limitKeyOf (IPv6 per /64).
import proxyaddr from 'proxy-addr';
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { forwardedClient, parseIp } from '../lib/ip.js';
import { requestHeader } from '../lib/node-fast-path.js';
import type { ClientIpVariables } from './app-env.js';

/** How the runtime exposes the peer address (Node's default reads c.env.incoming). */
export type RemoteAddress = (c: Context) => string | undefined;

export function compileTrust(trustProxy: string | undefined): (addr: string, i: number) => boolean {
  if (!trustProxy) return () => false;
  if (/^\d+$/.test(trustProxy)) {
    const hops = Number(trustProxy);
    return (_addr, i) => i < hops;
  }
  return proxyaddr.compile(
    trustProxy
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

export const clientIp = (opts: { trustProxy: string | undefined; remoteAddress: RemoteAddress }) => {
  // Validated once, at start: a bad TRUST_PROXY fails the boot, not a request.
  const trust = compileTrust(opts.trustProxy);
  const trusting = !!opts.trustProxy;
  return createMiddleware<{ Variables: ClientIpVariables }>((c, next) => {
    const socket = parseIp(opts.remoteAddress(c) ?? '') ?? '0.0.0.0';
    c.set('clientIp', trusting ? forwardedClient(socket, requestHeader(c, 'x-forwarded-for'), trust) : socket);
    return next();
  });
};
