// postgresql:// URLs with one host or several (`host1:26257,host2:26257,...`):
// WHATWG URL refuses a host list, so the list is set aside while the rest is
// parsed, and put back when the URL is written out again (postgres.js takes
// the list and fails over from one host to the next).

export type DatabaseUrl = {
  /** The URL with the first host in place of the list: user, database, parameters. */
  url: URL;
  /** Every host:port, in order. */
  hosts: string[];
  /** The URL as text again, host list restored. */
  toString(): string;
};

const SHAPE = /^(postgres(?:ql)?:\/\/)([^/?#]*)(.*)$/i;

export function parseDatabaseUrl(text: string): DatabaseUrl {
  const m = SHAPE.exec(text);
  if (!m) throw new TypeError('not a postgresql:// URL');
  const [, scheme, authority, rest] = m as unknown as [string, string, string, string];
  const at = authority.lastIndexOf('@');
  const userinfo = at === -1 ? '' : authority.slice(0, at + 1);
  const hosts = authority
    .slice(at + 1)
    .split(',')
    .filter(Boolean);
  const url = new URL(`${scheme}${userinfo}${hosts[0] ?? ''}${rest}`);
  return {
    url,
    hosts,
    toString() {
      const single = url.toString();
      if (hosts.length < 2) return single;
      // Put the list back where the first host is.
      const first = `${url.host}`;
      const i = single.indexOf(first, single.indexOf('://') + 3);
      return single.slice(0, i) + hosts.join(',') + single.slice(i + first.length);
    },
  };
}
