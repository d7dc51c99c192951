// /console: users, roles (a permission matrix), the audit log, statistics, OAuth clients and identity providers,
// each shown only to whoever holds its permission. Hiding is a courtesy: the
// API decides every request. Before any admin exists, the first-run setup.
import type { InferResponseType } from 'hono/client';
import { useEffect, useId, useState } from 'hono/jsx/dom';
import { api, client, ensureSignedIn, read, startBrowserSession, type Problem } from '../api.js';
import { Field, formValues, Layout, NewAccountFields, Notice, ProblemBox, Submit, useSubmit, when } from '../ui.js';
import { BarChart, TimelineChart } from './charts.js';
import { Clients } from './console-clients.js';
import { IdentityProviders } from './console-idps.js';

// The shapes the API's routes declare, through the typed client.
type User = InferResponseType<typeof api.users.$get, 200>['items'][number];
type Role = InferResponseType<typeof api.roles.$get, 200>['items'][number];
type CatalogueEntry = InferResponseType<typeof api.permissions.$get, 200>['items'][number];
type Entry = InferResponseType<typeof api.admin.logs.$get, 200>['items'][number];
type Me = InferResponseType<typeof api.users.me.$get, 200>;
type Stats = InferResponseType<typeof api.admin.stats.$get, 200>;
type Bucket = InferResponseType<typeof api.admin.stats.timeline.$get, 200>['buckets'][number];

/** What guest (anyone at all) can ever hold, as the server's shell of this page says (a module script runs after it is parsed). */
const GUEST_MAY_HOLD = new Set(document.getElementById('app')?.dataset.guestMayHold?.split(' ') ?? []);

const TABS = [
  { id: 'users', label: 'Users', needs: 'users:read' },
  { id: 'roles', label: 'Roles', needs: 'roles:read' },
  { id: 'audit', label: 'Audit log', needs: 'admin:logs:read' },
  { id: 'stats', label: 'Statistics', needs: 'admin:stats:read' },
  { id: 'clients', label: 'Clients', needs: 'clients:read' },
  { id: 'idps', label: 'Identity providers', needs: 'idps:read' },
] as const;
type Tab = (typeof TABS)[number]['id'];

export function ConsolePage() {
  const [me, setMe] = useState<Me | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [tab, setTab] = useState<Tab | null>(null);
  // null while asking: no tokens in this tab may still mean a browser session (an external sign-in, another tab).
  const [signed, setSigned] = useState<boolean | null>(null);
  const tabIds = useId();
  useEffect(() => {
    void (async () => {
      const yes = await ensureSignedIn();
      setSigned(yes);
      if (!yes) return;
      const out = await read(await api.users.me.$get());
      if (!out.ok) {
        if (out.problem.status === 401) location.assign('/login?next=/console');
        setProblem(out.problem);
        return;
      }
      setMe(out.data);
      setTab(TABS.find((t) => out.data.permissions.includes(t.needs))?.id ?? null);
    })();
  }, []);
  if (signed === null) return <Layout title="Admin console">{null}</Layout>;
  if (!signed) return <FirstRun />;
  const can = (p: string) => me?.permissions.includes(p) ?? false;
  const tabs = TABS.filter((t) => can(t.needs));
  return (
    <Layout title="Admin console" wide>
      <ProblemBox problem={problem} />
      {me && tabs.length === 0 ? <Notice>Your roles ({me.roles.join(', ')}) hold none of the console’s permissions.</Notice> : null}
      <div role="tablist" aria-label="Console sections" class="tabs">
        {tabs.map((t) => (
          <button
            type="button"
            role="tab"
            id={`${tabIds}-${t.id}`}
            aria-selected={tab === t.id ? 'true' : 'false'}
            onClick={() => setTab(t.id)}
          >
            {t.label}
          </button>
        ))}
      </div>
      <div role="tabpanel" aria-labelledby={tab ? `${tabIds}-${tab}` : undefined}>
        {tab === 'users' ? <Users can={can} /> : null}
        {tab === 'roles' ? <Roles can={can} /> : null}
        {tab === 'audit' ? <Audit /> : null}
        {tab === 'stats' ? <Stats /> : null}
        {tab === 'clients' ? <Clients can={can} /> : null}
        {tab === 'idps' ? <IdentityProviders can={can} /> : null}
      </div>
    </Layout>
  );
}

/** Not signed in: sign in, or (while no admin exists) create the first one with the setup token. */
function FirstRun() {
  // The server marks the page while nobody holds admin yet (and never in production).
  const open = document.getElementById('app')?.dataset.firstRun === 'open';
  const form = useSubmit(async (e: Event) => {
    const v = formValues(e);
    const out = await read(
      await api.setup.admin.$post({ json: { token: v.token ?? '', email: v.email ?? '', password: v.password ?? '', name: v.name ?? '' } }),
    );
    if (!out.ok) return out.problem;
    const signed = await client.login(v.email ?? '', v.password ?? '');
    if (signed.status === 200) await startBrowserSession();
    location.assign(signed.status === 200 ? '/console' : '/login?next=/console');
    return null;
  });
  return (
    <Layout title="Admin console">
      {open ? (
        <form onSubmit={form.submit} class="card" aria-label="Create the first admin">
          <h2>First run: create the first admin</h2>
          <p>
            The setup token is in the file <code>setup-token</code> in the service’s data directory (<code>DATA_DIR</code>, by default{' '}
            <code>./data</code>).
          </p>
          <Field label="Setup token" name="token" problem={form.problem} />
          <NewAccountFields problem={form.problem} />
          <ProblemBox problem={form.problem} />
          <Submit busy={form.busy}>Create the admin</Submit>
        </form>
      ) : null}
      <p class="links">
        <a href="/login?next=/console">Sign in to the console</a>
      </p>
    </Layout>
  );
}

function Users(props: { can: (p: string) => boolean }) {
  const [pages, setPages] = useState<{ items: User[]; nextCursor: string | null }>({ items: [], nextCursor: null });
  const [filter, setFilter] = useState<{ q?: string; role?: string }>({});
  const [picked, setPicked] = useState<User | null>(null);
  const [roles, setRoles] = useState<Role[]>([]);
  const load = useSubmit(async (f: { q?: string; role?: string }, cursor?: string) => {
    const query = { limit: '20', ...(f.q ? { q: f.q } : {}), ...(f.role ? { role: f.role } : {}), ...(cursor ? { cursor } : {}) };
    const out = await read(await api.users.$get({ query }));
    if (!out.ok) return out.problem;
    setPages((p) => ({ items: cursor ? [...p.items, ...out.data.items] : out.data.items, nextCursor: out.data.nextCursor }));
    return null;
  });
  useEffect(() => {
    void load.submit({});
    if (props.can('roles:read')) void api.roles.$get().then(async (r) => r.status === 200 && setRoles((await r.json()).items));
  }, []);
  return (
    <section aria-label="Users">
      <form
        class="filters"
        aria-label="Search users"
        onSubmit={(e: Event) => {
          const v = formValues(e);
          const f = { q: v.q || undefined, role: v.role || undefined };
          setFilter(f);
          void load.submit(f);
        }}
      >
        <Field label="Search email or name" name="q" required={false} />
        <Field label="Role" name="role" required={false} />
        <Submit busy={load.busy}>Search</Submit>
      </form>
      <ProblemBox problem={load.problem} />
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Email</th>
              <th scope="col">Name</th>
              <th scope="col">Roles</th>
              <th scope="col">Second factor</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {pages.items.map((u) => (
              <tr class={picked?.id === u.id ? 'picked' : ''}>
                <td>
                  <button type="button" class="link" onClick={() => setPicked(u)}>
                    {u.email}
                  </button>
                </td>
                <td>{u.name}</td>
                <td>{u.roles.join(', ')}</td>
                <td>
                  {u.mfa.totp || u.mfa.passkeys
                    ? [u.mfa.totp ? 'TOTP' : '', u.mfa.passkeys ? `${u.mfa.passkeys} passkey(s)` : ''].filter(Boolean).join(', ')
                    : '—'}
                </td>
                <td>{when(u.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {pages.nextCursor ? (
        <button type="button" class="secondary" onClick={() => load.submit(filter, pages.nextCursor!)}>
          More users
        </button>
      ) : null}
      {picked ? (
        <UserDetail
          key={picked.id}
          user={picked}
          roles={roles}
          can={props.can}
          onChange={(u) => {
            setPicked(u);
            if (u === null) void load.submit(filter);
            else setPages((p) => ({ ...p, items: p.items.map((x) => (x.id === u.id ? u : x)) }));
          }}
        />
      ) : null}
    </section>
  );
}

function UserDetail(props: { user: User; roles: Role[]; can: (p: string) => boolean; onChange: (u: User | null) => void }) {
  const u = props.user;
  const [done, setDone] = useState<string | null>(null);
  const assign = useSubmit(async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const wanted = [...form.querySelectorAll<HTMLInputElement>('input[name=role]:checked')].map((i) => i.value);
    const out = await read(await api.users[':id'].roles.$put({ param: { id: u.id }, json: { roles: wanted } }));
    if (!out.ok) return out.problem;
    props.onChange(out.data);
    setDone('Roles saved.');
    return null;
  });
  const act = useSubmit(async (what: 'sessions' | 'mfa' | 'delete') => {
    if (what === 'delete' && !confirm(`Delete ${u.email} and everything in the account?`)) return null;
    const res =
      what === 'sessions'
        ? await api.users[':id'].sessions.$delete({ param: { id: u.id } })
        : what === 'mfa'
          ? await api.users[':id'].mfa.$delete({ param: { id: u.id } })
          : await api.users[':id'].$delete({ param: { id: u.id } });
    const out = await read(res, [204]);
    if (!out.ok) return out.problem;
    if (what === 'delete') props.onChange(null);
    else setDone(what === 'sessions' ? 'Every session of this user has ended.' : 'Second factors removed; the user’s sessions have ended.');
    if (what === 'mfa') props.onChange({ ...u, mfa: { totp: false, passkeys: 0 } });
    return null;
  });
  const names = props.roles.length ? props.roles.map((r) => r.name).filter((n) => n !== 'guest') : u.roles;
  return (
    <section class="card detail" aria-label={`User ${u.email}`}>
      <h2>{u.email}</h2>
      <p>
        {u.name} · {u.emailVerified ? 'email confirmed' : 'email not confirmed'} · id <code>{u.id}</code>
      </p>
      <form onSubmit={assign.submit} aria-label="Roles of this user">
        <fieldset disabled={!props.can('users:roles:assign')}>
          <legend>Roles</legend>
          {names.map((name) => (
            <label class="check">
              <input type="checkbox" name="role" value={name} checked={u.roles.includes(name)} /> {name}
            </label>
          ))}
          <Submit busy={assign.busy}>Save roles</Submit>
        </fieldset>
      </form>
      <ProblemBox problem={assign.problem ?? act.problem} />
      {done ? <Notice>{done}</Notice> : null}
      <div class="actions">
        <button
          type="button"
          class="secondary"
          disabled={!props.can('users:sessions:revoke') || act.busy}
          onClick={() => act.submit('sessions')}
        >
          End all sessions
        </button>
        <button type="button" class="secondary" disabled={!props.can('users:mfa:reset') || act.busy} onClick={() => act.submit('mfa')}>
          Reset second factors
        </button>
        <button type="button" class="danger" disabled={!props.can('users:delete') || act.busy} onClick={() => act.submit('delete')}>
          Delete user
        </button>
      </div>
    </section>
  );
}

function Roles(props: { can: (p: string) => boolean }) {
  const [roles, setRoles] = useState<Role[]>([]);
  const [catalogue, setCatalogue] = useState<CatalogueEntry[]>([]);
  const load = useSubmit(async () => {
    const [r, p] = await Promise.all([read(await api.roles.$get()), read(await api.permissions.$get())]);
    if (!r.ok) return r.problem;
    if (!p.ok) return p.problem;
    setRoles(r.data.items);
    setCatalogue(p.data.items);
    return null;
  });
  useEffect(() => void load.submit(), []);
  const toggle = useSubmit(async (role: Role, permission: string, box: HTMLInputElement) => {
    const on = box.checked;
    const permissions = on ? [...role.permissions, permission] : role.permissions.filter((x) => x !== permission);
    const out = await read(await api.roles[':role'].permissions.$put({ param: { role: role.name }, json: { permissions } }));
    if (!out.ok) {
      // Refused: the box shows what the role really holds.
      box.checked = !on;
      await load.submit();
      return out.problem;
    }
    setRoles((rs) => rs.map((x) => (x.name === role.name ? out.data : x)));
    return null;
  });
  const create = useSubmit(async (e: Event) => {
    const v = formValues(e);
    const out = await read(await api.roles.$post({ json: { name: v.name ?? '', description: v.description ?? '' } }));
    if (!out.ok) return out.problem;
    (e.target as HTMLFormElement).reset();
    await load.submit();
    return null;
  });
  const remove = useSubmit(async (name: string) => {
    if (!confirm(`Delete the role ${name}? Its members lose it.`)) return null;
    const out = await read(await api.roles[':role'].$delete({ param: { role: name } }), [204]);
    if (!out.ok) return out.problem;
    await load.submit();
    return null;
  });
  const editable = props.can('roles:update');
  return (
    <section aria-label="Roles">
      <ProblemBox problem={load.problem ?? toggle.problem ?? remove.problem} />
      <div class="scroll">
        <table class="matrix">
          <caption>Permissions of each role (admin always holds every one; guest, anyone at all, only the open ones)</caption>
          <thead>
            <tr>
              <th scope="col">Permission</th>
              {roles.map((r) => (
                <th scope="col">
                  {r.name}
                  {r.builtIn ? <span class="badge">built-in</span> : null}
                  <small class="count">{r.userCount} users</small>
                  {!r.builtIn && editable ? (
                    <button type="button" class="small danger" onClick={() => remove.submit(r.name)} aria-label={`Delete role ${r.name}`}>
                      Delete
                    </button>
                  ) : null}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {catalogue.map((p) => (
              <tr>
                <th scope="row" title={p.description}>
                  <code>{p.name}</code>
                </th>
                {roles.map((r) => (
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`${r.name}: ${p.name}`}
                      checked={r.permissions.includes(p.name)}
                      disabled={!editable || r.name === 'admin' || (r.name === 'guest' && !GUEST_MAY_HOLD.has(p.name)) || toggle.busy}
                      onChange={(e: Event) => toggle.submit(r, p.name, e.target as HTMLInputElement)}
                    />
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {props.can('roles:create') ? (
        <form onSubmit={create.submit} class="card" aria-label="Create a role">
          <h2>New role</h2>
          <Field label="Name" name="name" hint="lower case, e.g. support_agent" problem={create.problem} />
          <Field label="Description" name="description" required={false} problem={create.problem} />
          <ProblemBox problem={create.problem} />
          <Submit busy={create.busy}>Create the role</Submit>
        </form>
      ) : null}
    </section>
  );
}

function Audit() {
  const [rows, setRows] = useState<{ items: Entry[]; nextCursor: string | null }>({ items: [], nextCursor: null });
  const [filter, setFilter] = useState<Record<string, string>>({});
  const load = useSubmit(async (f: Record<string, string>, cursor?: string) => {
    const query: Record<string, string> = { limit: '50', ...f, ...(cursor ? { cursor } : {}) };
    for (const k of ['since', 'until']) if (query[k]) query[k] = new Date(query[k]!).toISOString();
    const out = await read(await api.admin.logs.$get({ query }));
    if (!out.ok) return out.problem;
    setRows((r) => ({ items: cursor ? [...r.items, ...out.data.items] : out.data.items, nextCursor: out.data.nextCursor }));
    return null;
  });
  useEffect(() => void load.submit({}), []);
  return (
    <section aria-label="Audit log">
      <form
        class="filters"
        aria-label="Filter the audit log"
        onSubmit={(e: Event) => {
          const f = Object.fromEntries(Object.entries(formValues(e)).filter(([, v]) => v !== ''));
          setFilter(f);
          void load.submit(f);
        }}
      >
        <Field label="Actor id" name="actorId" required={false} />
        <Field label="Action" name="action" required={false} hint="e.g. auth.login" />
        <Field label="Status" name="status" required={false} inputmode="numeric" />
        <Field label="Since" name="since" type="datetime-local" required={false} />
        <Field label="Until" name="until" type="datetime-local" required={false} />
        <Submit busy={load.busy}>Filter</Submit>
      </form>
      <ProblemBox problem={load.problem} />
      <div class="scroll">
        <table class="audit">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Action</th>
              <th scope="col">Status</th>
              <th scope="col">Detail</th>
              <th scope="col">Actor</th>
              <th scope="col">Address</th>
              <th scope="col">Request</th>
            </tr>
          </thead>
          <tbody>
            {rows.items.map((e) => (
              <tr>
                <td>{when(e.at)}</td>
                <td>{e.action}</td>
                <td>{String(e.status)}</td>
                <td>{e.detail ?? ''}</td>
                <td>
                  <code>{e.actorId ?? '—'}</code>
                  {e.actorType === 'client' ? ' (client)' : ''}
                </td>
                <td>{e.ip}</td>
                <td>
                  {e.method} {e.path}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {rows.nextCursor ? (
        <button type="button" class="secondary" onClick={() => load.submit(filter, rows.nextCursor!)}>
          Older entries
        </button>
      ) : null}
    </section>
  );
}

function Stats() {
  const [stats, setStats] = useState<Stats | null>(null);
  const [buckets, setBuckets] = useState<Bucket[]>([]);
  const load = useSubmit(async () => {
    const [s, t] = await Promise.all([
      read(await api.admin.stats.$get()),
      read(await api.admin.stats.timeline.$get({ query: { hours: '24' } })),
    ]);
    if (!s.ok) return s.problem;
    setStats(s.data);
    if (!t.ok) return t.problem;
    setBuckets(t.data.buckets);
    return null;
  });
  useEffect(() => void load.submit(), []);
  if (!stats) return <ProblemBox problem={load.problem} />;
  // Shown above the charts when only the timeline failed.
  const timelineProblem = load.problem;
  // Only permissions that were checked at all: a long list of zeros says nothing.
  const perms = Object.keys(stats.access.byPermission)
    .filter((p) => stats.access.byPermission[p]!.allowed + stats.access.byPermission[p]!.denied > 0)
    .sort();
  const roles = Object.keys(stats.users.byRole).sort();
  const hours = buckets.map((b) => new Date(b.start).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
  const series = (k: keyof Omit<Bucket, 'start'>) => buckets.map((b) => b[k]);
  return (
    <section aria-label="Statistics">
      <p class="who">
        {stats.users.total} users · {stats.sessions.active} active sessions · {stats.posts.total} posts · {stats.auth.loginSucceeded}{' '}
        sign-ins, {stats.auth.loginFailed} failed
      </p>
      <ProblemBox problem={timelineProblem} />
      <TimelineChart
        title="Sign-ins in the last 24 hours"
        hours={hours}
        series={[
          { name: 'Succeeded', cls: 's-ok', values: series('loginSucceeded') },
          { name: 'Failed', cls: 's-bad', values: series('loginFailed') },
        ]}
      />
      <TimelineChart
        title="Access decisions in the last 24 hours"
        hours={hours}
        series={[
          { name: 'Allowed', cls: 's-ok', values: series('allowed') },
          { name: 'Denied', cls: 's-bad', values: series('denied') },
          { name: 'Rate-limited', cls: 's-warn', values: series('rateLimited') },
        ]}
      />
      <BarChart
        title="Allowed and denied per permission"
        labels={perms}
        series={[
          { name: 'Allowed', cls: 's-ok', values: perms.map((p) => stats.access.byPermission[p]!.allowed) },
          { name: 'Denied', cls: 's-bad', values: perms.map((p) => stats.access.byPermission[p]!.denied) },
        ]}
      />
      <BarChart
        title="Users by role"
        labels={roles}
        series={[{ name: 'Role memberships', cls: 's-ok', values: roles.map((r) => stats.users.byRole[r]!) }]}
      />
    </section>
  );
}
