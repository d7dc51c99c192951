// Client addresses: what counts as one, its one spelling, and the key that
// every per-address limit counts under. IPv6 is limited per /64: a subscriber
// is usually given a whole /64, so counting per address would give one client
// 2^64 budgets.
import { isIP } from 'node:net';

/** Longer than any spelling of an address with a port (a header entry past it is not one). */
const MAX_ENTRY = 64;
const V4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
const V6_IN_BRACKETS = /^\[([^\]]+)\](?::\d{1,5})?$/;

/** The eight 16-bit groups of a valid IPv6 address (an embedded IPv4 tail becomes two groups). */
function groupsOf(v6: string): number[] {
  const part = (p: string): number[] =>
    p === ''
      ? []
      : p.split(':').flatMap((g) => {
          if (!g.includes('.')) return [Number.parseInt(g, 16)];
          const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
          return [(a << 8) | b, (c << 8) | d];
        });
  const gap = v6.indexOf('::');
  if (gap < 0) return part(v6);
  const head = part(v6.slice(0, gap));
  const tail = part(v6.slice(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** RFC 5952 text: lower case, no leading zeros, the longest run of two or more zero groups as `::`. */
function formatGroups(g: number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(g) : `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it is. */
function mappedV4(g: number[]): string | undefined {
  if (g[5] !== 0xffff || g.slice(0, 5).some((x) => x !== 0)) return undefined;
  return [g[6]! >> 8, g[6]! & 255, g[7]! >> 8, g[7]! & 255].join('.');
}

/**
 * The address an entry names, in its canonical spelling, or undefined when it
 * is not an IP address. Accepted: IPv4, IPv6 (also in brackets), either with a
 * port (IPv6 only after brackets), surrounding blanks; an IPv6 zone id is
 * dropped (it means nothing off the link). IPv4-mapped IPv6 is the IPv4 address.
 */
export function parseIp(entry: string): string | undefined {
  let s = entry.trim();
  if (s.length === 0 || s.length > MAX_ENTRY) return undefined;
  const bracketed = V6_IN_BRACKETS.exec(s);
  if (bracketed) s = bracketed[1]!;
  else {
    const v4 = V4_WITH_PORT.exec(s);
    if (v4) s = v4[1]!;
  }
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const family = isIP(s);
  if (family === 4 && !bracketed) return s;
  if (family !== 6) return undefined;
  const groups = groupsOf(s);
  return mappedV4(groups) ?? formatGroups(groups);
}

/**
 * The key a client address is limited under: an IPv4 address as it is, an
 * IPv6 address as its /64 prefix (`2001:db8:1:2::/64`), the same for every
 * spelling of any address in it. Used by every per-address limit; sessions,
 * the audit log and mail show the full address.
 */
export function limitKeyOf(address: string): string {
  if (!address.includes(':')) return address;
  const ip = parseIp(address);
  if (ip === undefined) return address;
  if (!ip.includes(':')) return ip;
  return `${formatGroups([...groupsOf(ip).slice(0, 4), 0, 0, 0, 0])}/64`;
}

/**
 * The client, walking X-Forwarded-For back from the socket peer through the
 * hops `trusted` believes (`hop` 0 is the peer): the first hop not trusted is
 * the client. An entry that is not an IP address ends the walk: the nearest
 * trusted hop before it is the client.
 */
export function forwardedClient(peer: string, forwarded: string | undefined, trusted: (addr: string, hop: number) => boolean): string {
  let client = peer;
  let end = forwarded?.length ?? -1;
  for (let hop = 0; trusted(client, hop); hop++) {
    if (forwarded === undefined || end < 0) return client;
    const start = forwarded.lastIndexOf(',', end - 1);
    const next = parseIp(forwarded.slice(start + 1, end));
    if (next === undefined) return client;
    client = next;
    end = start;
  }
  return client;
}
