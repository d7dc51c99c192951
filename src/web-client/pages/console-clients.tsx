// The console's Clients section: the OAuth clients of the OpenID provider.
// List, register (the secret shown once), edit, rotate the secret, delete, and
// each client's sign-ins per hour. The API decides every request.
import type { InferResponseType } from 'hono/client';
import { useEffect, useId, useState } from 'hono/jsx/dom';
import { api, read, type Problem } from '../api.js';
import { Field, formValues, Notice, ProblemBox, Submit, useSubmit, when } from '../ui.js';
import { TimelineChart } from './charts.js';

type Client = InferResponseType<(typeof api.admin.clients)[':id']['$get'], 200>;
type Writable = Omit<Client, 'id' | 'source' | 'createdAt' | 'updatedAt'>;

const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
const SCOPES = ['openid', 'profile', 'email', 'roles', 'offline_access'] as const;
const ALGS = ['RS256', 'ES256', 'EdDSA'] as const;

const lines = (text: string | undefined) =>
  (text ?? '')
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);

/** A multi-line field: one value per line. */
function ListField(props: { label: string; name: string; value: string[]; hint?: string; problem: Problem | null }) {
  const id = useId();
  const error = props.problem?.errors?.find((e) => e.path === props.name || e.path.startsWith(`${props.name}.`))?.message;
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <textarea id={id} name={props.name} rows={2} aria-invalid={error ? 'true' : undefined} aria-describedby={`${id}-note`}>
        {props.value.join('\n')}
      </textarea>
      <small id={`${id}-note`} class={error ? 'field-error' : 'hint'}>
        {error ?? props.hint ?? 'one per line'}
      </small>
    </div>
  );
}

function Checks(props: { legend: string; name: string; options: readonly string[]; checked: readonly string[] }) {
  return (
    <fieldset>
      <legend>{props.legend}</legend>
      {props.options.map((o) => (
        <label class="check">
          <input type="checkbox" name={`${props.name}:${o}`} checked={props.checked.includes(o)} /> {o}
        </label>
      ))}
    </fieldset>
  );
}

/** The writable fields as the form holds them. */
function fieldsOf(form: HTMLFormElement, v: Record<string, string>): Writable {
  const checked = (name: string, options: readonly string[]) =>
    options.filter((o) => (form.elements.namedItem(`${name}:${o}`) as HTMLInputElement | null)?.checked);
  return {
    name: v.name ?? '',
    type: v.type === 'public' ? 'public' : 'confidential',
    redirectUris: lines(v.redirectUris),
    postLogoutRedirectUris: lines(v.postLogoutRedirectUris),
    grantTypes: checked('grantTypes', GRANT_TYPES) as Writable['grantTypes'],
    scopes: checked('scopes', SCOPES) as Writable['scopes'],
    firstParty: (form.elements.namedItem('firstParty') as HTMLInputElement | null)?.checked ?? false,
    allowedOrigins: lines(v.allowedOrigins),
    idTokenSignedResponseAlg: (ALGS.find((a) => a === v.idTokenSignedResponseAlg) ?? 'RS256') as Writable['idTokenSignedResponseAlg'],
    backchannelLogoutUri: v.backchannelLogoutUri?.trim() ? v.backchannelLogoutUri.trim() : null,
    audiences: lines(v.audiences),
    roles: lines(v.roles),
  };
}

const BLANK: Writable = {
  name: '',
  type: 'confidential',
  redirectUris: [],
  postLogoutRedirectUris: [],
  grantTypes: ['authorization_code', 'refresh_token'],
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  firstParty: false,
  allowedOrigins: [],
  idTokenSignedResponseAlg: 'RS256',
  backchannelLogoutUri: null,
  audiences: [],
  roles: [],
};

/** The form of a client, new (with an optional id) or existing. */
function ClientForm(props: {
  label: string;
  client: Writable;
  withId: boolean;
  busy: boolean;
  problem: Problem | null;
  onSubmit: (fields: Writable, id: string | undefined, form: HTMLFormElement) => void;
  children: string;
}) {
  const c = props.client;
  const typeId = useId();
  const algId = useId();
  return (
    <form
      class="card"
      aria-label={props.label}
      onSubmit={(e: Event) => {
        const v = formValues(e);
        const form = e.currentTarget as HTMLFormElement;
        props.onSubmit(fieldsOf(form, v), v.id?.trim() || undefined, form);
      }}
    >
      <h2>{props.label}</h2>
      {props.withId ? (
        <Field label="Client id" name="id" required={false} hint="leave empty to generate one" problem={props.problem} />
      ) : null}
      <Field label="Name" name="name" value={c.name} problem={props.problem} />
      <div class="field">
        <label for={typeId}>Type</label>
        <select id={typeId} name="type">
          <option value="confidential" selected={c.type === 'confidential'}>
            confidential (a server: has a secret)
          </option>
          <option value="public" selected={c.type === 'public'}>
            public (a browser or native app: PKCE, no secret)
          </option>
        </select>
      </div>
      <ListField label="Redirect URIs" name="redirectUris" value={c.redirectUris} problem={props.problem} />
      <ListField label="Post-logout redirect URIs" name="postLogoutRedirectUris" value={c.postLogoutRedirectUris} problem={props.problem} />
      <Checks legend="Grant types" name="grantTypes" options={GRANT_TYPES} checked={c.grantTypes} />
      <Checks legend="Scopes it may ask for" name="scopes" options={SCOPES} checked={c.scopes} />
      <label class="check">
        <input type="checkbox" name="firstParty" checked={c.firstParty} /> First party (no consent page)
      </label>
      <ListField
        label="Allowed origins (CORS)"
        name="allowedOrigins"
        value={c.allowedOrigins}
        hint="e.g. https://app.example.com, one per line"
        problem={props.problem}
      />
      <div class="field">
        <label for={algId}>ID token signing algorithm</label>
        <select id={algId} name="idTokenSignedResponseAlg">
          {ALGS.map((a) => (
            <option value={a} selected={c.idTokenSignedResponseAlg === a}>
              {a}
            </option>
          ))}
        </select>
      </div>
      <Field
        label="Back-channel logout URI"
        name="backchannelLogoutUri"
        required={false}
        value={c.backchannelLogoutUri ?? ''}
        problem={props.problem}
      />
      <ListField label="Audiences" name="audiences" value={c.audiences} hint="empty: the issuer" problem={props.problem} />
      <ListField label="Roles (client_credentials)" name="roles" value={c.roles} problem={props.problem} />
      <ProblemBox problem={props.problem} />
      <Submit busy={props.busy}>{props.children}</Submit>
    </form>
  );
}

/** The secret, shown once after registration or rotation. */
function SecretOnce(props: { clientId: string; secret: string; onDone: () => void }) {
  return (
    <div class="notice" role="status" aria-label="Client secret">
      <p>
        The secret of <code>{props.clientId}</code>, shown this once (only its hash is kept): copy it now.
      </p>
      <p>
        <code class="secret">{props.secret}</code>
      </p>
      <button type="button" class="secondary" onClick={props.onDone}>
        I have copied it
      </button>
    </div>
  );
}

function SignIns(props: { clientId: string }) {
  const [buckets, setBuckets] = useState<{ start: string; signIns: number }[]>([]);
  const load = useSubmit(async () => {
    const out = await read(await api.admin.clients[':id'].stats.$get({ param: { id: props.clientId }, query: { hours: '24' } }));
    if (!out.ok) return out.problem;
    setBuckets(out.data.buckets);
    return null;
  });
  useEffect(() => void load.submit(), [props.clientId]);
  return (
    <>
      <ProblemBox problem={load.problem} />
      <TimelineChart
        title={`Sign-ins of ${props.clientId} in the last 24 hours`}
        hours={buckets.map((b) => new Date(b.start).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }))}
        series={[{ name: 'Sign-ins', cls: 's-ok', values: buckets.map((b) => b.signIns) }]}
      />
    </>
  );
}

function ClientDetail(props: { client: Client; manage: boolean; onChange: (c: Client | null) => void }) {
  const c = props.client;
  const [secret, setSecret] = useState<string | null>(null);
  const save = useSubmit(async (fields: Writable) => {
    const out = await read(await api.admin.clients[':id'].$put({ param: { id: c.id }, json: fields }));
    if (!out.ok) return out.problem;
    props.onChange(out.data);
    return null;
  });
  const rotate = useSubmit(async () => {
    if (!confirm(`Replace the secret of ${c.id}? The old one stops working.`)) return null;
    const out = await read(await api.admin.clients[':id'].secret.$post({ param: { id: c.id } }));
    if (!out.ok) return out.problem;
    setSecret(out.data.clientSecret);
    return null;
  });
  const remove = useSubmit(async () => {
    if (!confirm(`Delete the client ${c.id}? Every grant and token issued to it stops working.`)) return null;
    const out = await read(await api.admin.clients[':id'].$delete({ param: { id: c.id } }), [204]);
    if (!out.ok) return out.problem;
    props.onChange(null);
    return null;
  });
  return (
    <section class="card" aria-label={`Client ${c.id}`}>
      <h2>
        {c.name} <code>{c.id}</code>
        {c.source === 'file' ? <span class="badge">OAUTH_CLIENTS_FILE</span> : null}
      </h2>
      <p class="who">
        {c.type} · registered {when(c.createdAt)} · changed {when(c.updatedAt)}
      </p>
      {c.source === 'file' ? <Notice>Declared in OAUTH_CLIENTS_FILE: the next start writes the file’s version again.</Notice> : null}
      {secret ? <SecretOnce clientId={c.id} secret={secret} onDone={() => setSecret(null)} /> : null}
      <SignIns clientId={c.id} />
      {props.manage ? (
        <>
          <details>
            <summary>Edit the client</summary>
            <ClientForm
              label={`Edit ${c.id}`}
              client={c}
              withId={false}
              busy={save.busy}
              problem={save.problem}
              onSubmit={(f) => void save.submit(f)}
            >
              Save
            </ClientForm>
          </details>
          <ProblemBox problem={rotate.problem ?? remove.problem} />
          {c.type === 'confidential' ? (
            <button type="button" class="secondary" disabled={rotate.busy} onClick={() => rotate.submit()}>
              Rotate the secret
            </button>
          ) : null}{' '}
          <button type="button" class="danger" disabled={remove.busy} onClick={() => remove.submit()}>
            Delete the client
          </button>
        </>
      ) : null}
    </section>
  );
}

export function Clients(props: { can: (p: string) => boolean }) {
  const [list, setList] = useState<{ items: Client[]; nextCursor: string | null }>({ items: [], nextCursor: null });
  const [picked, setPicked] = useState<Client | null>(null);
  const [created, setCreated] = useState<{ id: string; secret: string } | null>(null);
  const load = useSubmit(async (cursor?: string) => {
    const out = await read(await api.admin.clients.$get({ query: { limit: '50', ...(cursor ? { cursor } : {}) } }));
    if (!out.ok) return out.problem;
    setList((l) => ({ items: cursor ? [...l.items, ...out.data.items] : out.data.items, nextCursor: out.data.nextCursor }));
    return null;
  });
  useEffect(() => void load.submit(), []);
  const create = useSubmit(async (fields: Writable, id: string | undefined, form: HTMLFormElement) => {
    const out = await read(await api.admin.clients.$post({ json: { ...fields, ...(id ? { id } : {}) } }));
    if (!out.ok) return out.problem;
    const { clientSecret, ...client } = out.data;
    if (clientSecret) setCreated({ id: client.id, secret: clientSecret });
    form.reset();
    setPicked(client);
    await load.submit();
    return null;
  });
  const manage = props.can('clients:manage');
  return (
    <section aria-label="Clients">
      <ProblemBox problem={load.problem} />
      {created ? <SecretOnce clientId={created.id} secret={created.secret} onDone={() => setCreated(null)} /> : null}
      <div class="scroll">
        <table>
          <caption>OAuth clients, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Client id</th>
              <th scope="col">Type</th>
              <th scope="col">Grants</th>
              <th scope="col">Registered</th>
            </tr>
          </thead>
          <tbody>
            {list.items.map((c) => (
              <tr class={picked?.id === c.id ? 'picked' : undefined}>
                <td>
                  <button type="button" class="link" onClick={() => setPicked(c)}>
                    {c.name}
                  </button>
                </td>
                <td>
                  <code>{c.id}</code>
                </td>
                <td>{c.type}</td>
                <td>{c.grantTypes.join(', ')}</td>
                <td>{when(c.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.nextCursor ? (
        <button type="button" class="secondary" onClick={() => load.submit(list.nextCursor!)}>
          More clients
        </button>
      ) : null}
      {picked ? (
        <ClientDetail
          key={picked.id}
          client={picked}
          manage={manage}
          onChange={(c) => {
            setPicked(c);
            void load.submit();
          }}
        />
      ) : null}
      {manage ? (
        <details>
          <summary>Register a client</summary>
          <ClientForm
            label="New client"
            client={BLANK}
            withId
            busy={create.busy}
            problem={create.problem}
            onSubmit={(f, id, form) => void create.submit(f, id, form)}
          >
            Register the client
          </ClientForm>
        </details>
      ) : null}
    </section>
  );
}
