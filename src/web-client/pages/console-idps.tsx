// The console's Identity providers section: the upstream OpenID Connect
// providers and GitHub that users sign in with. List, add, edit, enable or
// disable, set the client secret (write-only: never shown, only whether one
// is stored) and delete. The API decides every request.
import type { InferRequestType, InferResponseType } from 'hono/client';
import { useEffect, useId, useState } from 'hono/jsx/dom';
import { api, read, type Problem } from '../api.js';
import { Field, formValues, Notice, ProblemBox, Submit, useSubmit, when } from '../ui.js';

// The shapes the API's routes declare, through the typed client.
type IdentityProvider = InferResponseType<(typeof api.admin)['identity-providers'][':id']['$get'], 200>;
type IdpType = IdentityProvider['type'];
/** What a POST or PUT sends: the writable fields of the provider's type only, the secret only when typed in. */
type Writable = Omit<InferRequestType<(typeof api.admin)['identity-providers'][':id']['$put']>['json'], 'clientSecret'> & {
  clientSecret?: string;
};
const idpApi = () => api.admin['identity-providers'];

const DEFAULT_SCOPES: Record<IdpType, string[]> = { oidc: ['openid', 'email', 'profile'], github: ['read:user', 'user:email'] };

const words = (text: string | undefined) =>
  (text ?? '')
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

/** The writable representation of a stored provider (for enable/disable, which PUTs the whole of it). */
function writableOf(p: IdentityProvider, changes: Partial<Writable> = {}): Writable {
  return {
    type: p.type,
    name: p.name,
    ...(p.type === 'oidc' ? { issuer: p.issuer ?? '' } : {}),
    ...(p.type === 'github' && p.githubUrl ? { githubUrl: p.githubUrl } : {}),
    ...(p.type === 'github' && p.githubApiUrl ? { githubApiUrl: p.githubApiUrl } : {}),
    clientId: p.clientId,
    scopes: p.scopes,
    trustEmailVerified: p.trustEmailVerified,
    enabled: p.enabled,
    ...changes,
  };
}

/** The form's fields as the API takes them. */
function fieldsOf(form: HTMLFormElement, v: Record<string, string>, type: IdpType): Writable {
  const checked = (name: string) => (form.elements.namedItem(name) as HTMLInputElement | null)?.checked ?? false;
  const scopes = words(v.scopes);
  const secret = v.clientSecret ?? '';
  return {
    type,
    name: v.name ?? '',
    ...(type === 'oidc' ? { issuer: v.issuer?.trim() ?? '' } : {}),
    ...(type === 'github' && v.githubUrl?.trim() ? { githubUrl: v.githubUrl.trim() } : {}),
    ...(type === 'github' && v.githubApiUrl?.trim() ? { githubApiUrl: v.githubApiUrl.trim() } : {}),
    clientId: v.clientId?.trim() ?? '',
    scopes: scopes.length ? scopes : DEFAULT_SCOPES[type],
    trustEmailVerified: checked('trustEmailVerified'),
    enabled: checked('enabled'),
    ...(secret ? { clientSecret: secret } : {}),
  };
}

const BLANK: IdentityProvider = {
  id: '',
  type: 'oidc',
  name: '',
  issuer: '',
  githubUrl: null,
  githubApiUrl: null,
  clientId: '',
  scopes: DEFAULT_SCOPES.oidc,
  trustEmailVerified: false,
  enabled: true,
  hasClientSecret: false,
  source: 'api',
  createdAt: '',
  updatedAt: '',
};

/** The form of a provider, new (with its id) or existing. */
function IdpForm(props: {
  label: string;
  idp: IdentityProvider;
  isNew: boolean;
  busy: boolean;
  problem: Problem | null;
  onSubmit: (fields: Writable, id: string, form: HTMLFormElement) => void;
  children: string;
}) {
  const p = props.idp;
  const [type, setType] = useState<IdpType>(p.type);
  const typeId = useId();
  return (
    <form
      class="card"
      aria-label={props.label}
      onSubmit={(e: Event) => {
        const v = formValues(e);
        const form = e.currentTarget as HTMLFormElement;
        props.onSubmit(fieldsOf(form, v, type), v.id?.trim() ?? p.id, form);
      }}
    >
      <h2>{props.label}</h2>
      {props.isNew ? (
        <Field
          label="Id"
          name="id"
          hint="lowercase letters, digits and dashes; part of the redirect URI /auth/external/<id>/callback"
          problem={props.problem}
        />
      ) : null}
      <div class="field">
        <label for={typeId}>Type</label>
        <select id={typeId} name="type" onChange={(e: Event) => setType((e.currentTarget as HTMLSelectElement).value as IdpType)}>
          <option value="oidc" selected={type === 'oidc'}>
            OpenID Connect (Google, Microsoft Entra ID, GitLab, Okta, Keycloak…)
          </option>
          <option value="github" selected={type === 'github'}>
            GitHub (OAuth App)
          </option>
        </select>
      </div>
      <Field label="Name (the button says “Continue with <name>”)" name="name" value={p.name} problem={props.problem} />
      {type === 'oidc' ? (
        <Field
          label="Issuer"
          name="issuer"
          type="url"
          value={p.issuer ?? ''}
          hint="its discovery document is at <issuer>/.well-known/openid-configuration"
          problem={props.problem}
        />
      ) : (
        <>
          <Field
            label="GitHub URL"
            name="githubUrl"
            type="url"
            required={false}
            value={p.githubUrl ?? ''}
            hint="empty: https://github.com (GitHub Enterprise Server: its own URL)"
            problem={props.problem}
          />
          <Field
            label="GitHub API URL"
            name="githubApiUrl"
            type="url"
            required={false}
            value={p.githubApiUrl ?? ''}
            hint="empty: https://api.github.com"
            problem={props.problem}
          />
        </>
      )}
      <Field label="Client id" name="clientId" value={p.clientId} problem={props.problem} />
      <Field
        label={props.isNew ? 'Client secret' : 'New client secret'}
        name="clientSecret"
        type="password"
        autocomplete="new-password"
        required={false}
        hint={props.isNew ? 'stored encrypted, never shown again' : 'empty: keep the stored one'}
        problem={props.problem}
      />
      <Field
        label="Scopes"
        name="scopes"
        value={(p.type === type ? p.scopes : DEFAULT_SCOPES[type]).join(' ')}
        required={false}
        hint={`separated by spaces; empty: ${DEFAULT_SCOPES[type].join(' ')}`}
        problem={props.problem}
      />
      <label class="check">
        <input type="checkbox" name="trustEmailVerified" checked={p.trustEmailVerified} /> Trust the provider’s verified email (links an
        existing account with the same confirmed address)
      </label>
      <label class="check">
        <input type="checkbox" name="enabled" checked={p.enabled} /> Enabled (shown on the sign-in page)
      </label>
      <ProblemBox problem={props.problem} />
      <Submit busy={props.busy}>{props.children}</Submit>
    </form>
  );
}

function IdpDetail(props: { idp: IdentityProvider; manage: boolean; onChange: (p: IdentityProvider | null) => void }) {
  const p = props.idp;
  const put = async (json: Writable) => {
    const out = await read(await idpApi()[':id'].$put({ param: { id: p.id }, json }));
    if (!out.ok) return out.problem;
    props.onChange(out.data);
    return null;
  };
  const save = useSubmit((fields: Writable) => put(fields));
  const toggle = useSubmit(() => put(writableOf(p, { enabled: !p.enabled })));
  const remove = useSubmit(async () => {
    if (
      !confirm(`Delete the provider ${p.id}? Every account's link to it is removed: whoever signed in only with it must reset a password.`)
    )
      return null;
    const out = await read(await idpApi()[':id'].$delete({ param: { id: p.id } }), [204]);
    if (!out.ok) return out.problem;
    props.onChange(null);
    return null;
  });
  return (
    <section class="card" aria-label={`Identity provider ${p.id}`}>
      <h2>
        {p.name} <code>{p.id}</code>
        {p.enabled ? null : <span class="badge">disabled</span>}
        {p.source === 'file' ? <span class="badge">IDENTITY_PROVIDERS_FILE</span> : null}
      </h2>
      <p class="who">
        {p.type === 'oidc' ? `OpenID Connect · ${p.issuer ?? ''}` : `GitHub · ${p.githubUrl ?? 'https://github.com'}`} · client{' '}
        <code>{p.clientId}</code> · {p.hasClientSecret ? 'secret stored' : 'no secret'} · added {when(p.createdAt)} · changed{' '}
        {when(p.updatedAt)}
      </p>
      <p class="who">
        Redirect URI to register at the provider: <code>{`${location.origin}/auth/external/${p.id}/callback`}</code>
      </p>
      {p.source === 'file' ? <Notice>Declared in IDENTITY_PROVIDERS_FILE: the next start writes the file’s version again.</Notice> : null}
      {props.manage ? (
        <>
          <details>
            <summary>Edit the provider or set its secret</summary>
            <IdpForm
              label={`Edit ${p.id}`}
              idp={p}
              isNew={false}
              busy={save.busy}
              problem={save.problem}
              onSubmit={(f) => void save.submit(f)}
            >
              Save
            </IdpForm>
          </details>
          <ProblemBox problem={toggle.problem ?? remove.problem} />
          <div class="actions">
            <button type="button" class="secondary" disabled={toggle.busy} onClick={() => toggle.submit()}>
              {p.enabled ? 'Disable' : 'Enable'}
            </button>
            <button type="button" class="danger" disabled={remove.busy} onClick={() => remove.submit()}>
              Delete the provider
            </button>
          </div>
        </>
      ) : null}
    </section>
  );
}

export function IdentityProviders(props: { can: (p: string) => boolean }) {
  const [items, setItems] = useState<IdentityProvider[]>([]);
  const [picked, setPicked] = useState<IdentityProvider | null>(null);
  const load = useSubmit(async () => {
    const out = await read(await idpApi().$get());
    if (!out.ok) return out.problem;
    setItems(out.data.items);
    return null;
  });
  useEffect(() => void load.submit(), []);
  const create = useSubmit(async (fields: Writable, id: string, form: HTMLFormElement) => {
    const out = await read(await idpApi().$post({ json: { id, ...fields } }));
    if (!out.ok) return out.problem;
    form.reset();
    setPicked(out.data);
    await load.submit();
    return null;
  });
  const manage = props.can('idps:manage');
  return (
    <section aria-label="Identity providers">
      <ProblemBox problem={load.problem} />
      {items.length === 0 && !load.busy ? <p>No identity providers yet: users sign in with a password or a passkey only.</p> : null}
      <div class="scroll">
        <table>
          <caption>Identity providers users can sign in with</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Id</th>
              <th scope="col">Type</th>
              <th scope="col">Enabled</th>
              <th scope="col">Added</th>
            </tr>
          </thead>
          <tbody>
            {items.map((p) => (
              <tr class={picked?.id === p.id ? 'picked' : undefined}>
                <td>
                  <button type="button" class="link" onClick={() => setPicked(p)}>
                    {p.name}
                  </button>
                </td>
                <td>
                  <code>{p.id}</code>
                </td>
                <td>{p.type === 'oidc' ? 'OpenID Connect' : 'GitHub'}</td>
                <td>{p.enabled ? 'yes' : 'no'}</td>
                <td>{when(p.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {picked ? (
        <IdpDetail
          key={`${picked.id}:${picked.updatedAt}`}
          idp={picked}
          manage={manage}
          onChange={(p) => {
            setPicked(p);
            void load.submit();
          }}
        />
      ) : null}
      {manage ? (
        <details>
          <summary>Add an identity provider</summary>
          <IdpForm
            label="New identity provider"
            idp={BLANK}
            isNew
            busy={create.busy}
            problem={create.problem}
            onSubmit={(f, id, form) => void create.submit(f, id, form)}
          >
            Add the provider
          </IdpForm>
        </details>
      ) : null}
    </section>
  );
}
