// /account: the signed-in user's profile, password, sessions, TOTP (QR code
// rendered here, recovery codes shown once), passkeys, linked sign-in methods
// (external identity providers), connected apps, export and deletion.
import { startRegistration } from '@simplewebauthn/browser';
import type { InferResponseType } from 'hono/client';
import { useEffect, useState } from 'hono/jsx/dom';
import { encode } from 'uqr';
import {
  api,
  client,
  type ExternalProvider,
  enabledProviders,
  endBrowserSession,
  ensureSignedIn,
  externalSignInUrl,
  read,
  toLogin,
  type Problem,
} from '../api.js';
import { Field, formValues, Layout, Notice, ProblemBox, Section, Submit, useSubmit, when } from '../ui.js';

// The shapes the API's routes declare, through the typed client.
type Me = InferResponseType<typeof api.users.me.$get, 200>;
type Session = InferResponseType<typeof api.users.me.sessions.$get, 200>['items'][number];
type Passkey = InferResponseType<typeof api.users.me.passkeys.$get, 200>['items'][number];
type Grant = InferResponseType<typeof api.users.me.grants.$get, 200>['items'][number];
type Identity = InferResponseType<typeof api.users.me.identities.$get, 200>['items'][number];

/** False when the account has no password (it signed up through an identity provider): a recent sign-in is its step-up. */
const hasPassword = (me: Me): boolean => me.hasPassword;

/** A form's step-up as the typed client takes it: what was typed, nothing empty (a user without a password sends none). */
const typed = (v: Record<string, string>) => [v.currentPassword || undefined, v.code || undefined] as const;
const proof = (v: Record<string, string>) => {
  const [currentPassword, code] = typed(v);
  return { ...(currentPassword ? { currentPassword } : {}), ...(code ? { code } : {}) };
};

/** The current password a step-up asks for; without a password, the words saying what proves it instead. */
function CurrentPassword(props: { me: Me; problem: Problem | null; label?: string }) {
  if (!hasPassword(props.me))
    return <p class="hint">Your account has no password: a sign-in in the last few minutes confirms it is you.</p>;
  return (
    <Field
      label={props.label ?? 'Current password'}
      name="currentPassword"
      type="password"
      autocomplete="current-password"
      problem={props.problem}
    />
  );
}

/** The QR code of an otpauth:// URI as SVG squares (no image from anywhere else). */
function QrCode(props: { text: string }) {
  const { data, size } = encode(props.text, { border: 2 });
  const cells: string[] = [];
  for (const [y, row] of data.entries()) for (const [x, on] of row.entries()) if (on) cells.push(`M${x} ${y}h1v1h-1z`);
  return (
    <svg class="qr" viewBox={`0 0 ${size} ${size}`} role="img" aria-label="QR code for your authenticator app" shape-rendering="crispEdges">
      <rect width={size} height={size} fill="#fff" />
      <path d={cells.join('')} fill="#000" />
    </svg>
  );
}

export function AccountPage() {
  const [me, setMe] = useState<Me | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const reload = async () => {
    const out = await read(await api.users.me.$get());
    if (out.ok) setMe(out.data);
    else if (out.problem.status === 401) toLogin();
    else setProblem(out.problem);
  };
  useEffect(() => {
    // No tokens in this tab: the browser session (an external sign-in's callback, another tab) may still sign it in.
    void ensureSignedIn().then((yes) => (yes ? reload() : toLogin()));
  }, []);
  if (!me)
    return (
      <Layout title="Your account">
        <ProblemBox problem={problem} />
      </Layout>
    );
  return (
    <Layout title="Your account">
      <p class="who">
        Signed in as <strong>{me.name}</strong> ({me.email}
        {me.emailVerified ? ', confirmed' : ', not confirmed yet'}) · roles: {me.roles.join(', ')}
      </p>
      <Profile me={me} onChange={reload} />
      <Password me={me} onChange={reload} />
      <Sessions />
      <Totp me={me} onChange={reload} />
      <Passkeys me={me} onChange={reload} />
      <LinkedIdentities me={me} />
      <ConnectedApps />
      <Data me={me} />
      <button
        type="button"
        class="secondary"
        onClick={async () => {
          // The logout ends the sign-in (and so the browser session); then the cookie goes too.
          await client.logout();
          await endBrowserSession();
          location.assign('/login');
        }}
      >
        Sign out
      </button>
    </Layout>
  );
}

function Profile(props: { me: Me; onChange: () => void }) {
  const [saved, setSaved] = useState(false);
  const form = useSubmit(async (e: Event) => {
    const v = formValues(e);
    const emailChanged = v.email !== props.me.email;
    const json = {
      name: v.name,
      ...(emailChanged ? { email: v.email, ...(v.currentPassword ? { currentPassword: v.currentPassword } : {}) } : {}),
      ...(emailChanged && v.code ? { code: v.code } : {}),
    };
    const out = await read(await api.users.me.$put({ json }));
    if (!out.ok) return out.problem;
    setSaved(true);
    props.onChange();
    return null;
  });
  return (
    <Section title="Profile">
      <form onSubmit={form.submit} aria-label="Profile">
        <Field label="Name" name="name" autocomplete="name" value={props.me.name} problem={form.problem} />
        <Field label="Email" name="email" type="email" autocomplete="email" value={props.me.email} problem={form.problem} />
        {hasPassword(props.me) ? (
          <Field
            label="Current password (to change the email)"
            name="currentPassword"
            type="password"
            autocomplete="current-password"
            required={false}
            problem={form.problem}
          />
        ) : null}
        {props.me.mfa.totp ? (
          <Field
            label="Authenticator code (to change the email)"
            name="code"
            autocomplete="one-time-code"
            required={false}
            problem={form.problem}
          />
        ) : null}
        <ProblemBox problem={form.problem} />
        {saved && !form.problem ? <Notice>Saved.</Notice> : null}
        <Submit busy={form.busy}>Save</Submit>
      </form>
    </Section>
  );
}

function Password(props: { me: Me; onChange: () => void }) {
  const [saved, setSaved] = useState<string | null>(null);
  const form = useSubmit(async (e: Event) => {
    const v = formValues(e);
    const removePasskeys = v.removePasskeys === 'on';
    const json = {
      password: v.password,
      ...proof(v),
      ...(removePasskeys ? { removePasskeys } : {}),
    };
    const out = await read(await api.users.me.$put({ json }));
    if (!out.ok) return out.problem;
    (e.target as HTMLFormElement).reset();
    if (!hasPassword(props.me)) {
      setSaved('Password set: you can sign in with it too.');
      props.onChange();
      return null;
    }
    setSaved(
      removePasskeys
        ? 'Password changed; your other sessions have ended and your passkeys are removed.'
        : 'Password changed; your other sessions have ended.',
    );
    if (removePasskeys) props.onChange();
    return null;
  });
  return (
    <Section title="Password">
      <form onSubmit={form.submit} aria-label="Change the password">
        <CurrentPassword me={props.me} problem={form.problem} />
        <Field
          label="New password"
          name="password"
          type="password"
          autocomplete="new-password"
          hint="8 to 128 characters; your other sessions end"
          problem={form.problem}
        />
        {props.me.mfa.totp ? (
          <Field
            label="Authenticator code"
            name="code"
            autocomplete="one-time-code"
            required={hasPassword(props.me)}
            problem={form.problem}
          />
        ) : null}
        {props.me.mfa.passkeys > 0 ? (
          <label class="check">
            <input type="checkbox" name="removePasskeys" /> Also remove my passkeys
          </label>
        ) : null}
        <ProblemBox problem={form.problem} />
        {saved && !form.problem ? <Notice>{saved}</Notice> : null}
        <Submit busy={form.busy}>{hasPassword(props.me) ? 'Change the password' : 'Set a password'}</Submit>
      </form>
    </Section>
  );
}

function Sessions() {
  const [items, setItems] = useState<Session[]>([]);
  const action = useSubmit(async (run?: () => Promise<Response>) => {
    if (run) {
      const out = await read(await run(), [204]);
      if (!out.ok) return out.problem;
    }
    const list = await read(await client.sessions());
    if (!list.ok) return list.problem;
    setItems(list.data.items);
    return null;
  });
  useEffect(() => void action.submit(), []);
  return (
    <Section title="Sessions">
      <div class="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Device</th>
              <th scope="col">Address</th>
              <th scope="col">Signed in</th>
              <th scope="col">Last refreshed</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {items.map((s) => (
              <tr>
                <td title={s.userAgent}>
                  {s.userAgent ? (s.userAgent.length > 60 ? `${s.userAgent.slice(0, 57)}…` : s.userAgent) : 'unknown'}
                </td>
                <td>{s.ip}</td>
                <td>{when(s.createdAt)}</td>
                <td>{when(s.lastRefreshedAt)}</td>
                <td>
                  {s.current ? (
                    <em>this one</em>
                  ) : (
                    <button type="button" class="small" onClick={() => action.submit(() => client.endSession(s.id))}>
                      End
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <ProblemBox problem={action.problem} />
      <button type="button" class="secondary" onClick={() => action.submit(() => client.endOtherSessions())}>
        Sign out everywhere else
      </button>
    </Section>
  );
}

function RecoveryCodes(props: { codes: string[] }) {
  return (
    <div class="notice" role="status">
      <p>
        <strong>Recovery codes</strong> — each works once if you lose your device. They are shown only now: keep them somewhere safe.
      </p>
      <ol class="codes" aria-label="Recovery codes">
        {props.codes.map((c) => (
          <li>
            <code>{c}</code>
          </li>
        ))}
      </ol>
    </div>
  );
}

function Totp(props: { me: Me; onChange: () => void }) {
  const [pending, setPending] = useState<{ secret: string; otpauthUri: string } | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const start = useSubmit(async (e: Event) => {
    const out = await read(await client.enrolTotp(typed(formValues(e))[0]));
    if (!out.ok) return out.problem;
    setPending(out.data);
    return null;
  });
  const confirm = useSubmit(async (e: Event) => {
    const v = formValues(e);
    const out = await read(await client.confirmTotp(v.code ?? '', v.endOtherSessions === 'on'));
    if (!out.ok) return out.problem;
    setPending(null);
    setCodes(out.data.recoveryCodes);
    props.onChange();
    return null;
  });
  const off = useSubmit(async (e: Event) => {
    const v = formValues(e);
    const out = await read(await api.users.me.mfa.totp.$delete({ json: proof(v) }), [204]);
    if (!out.ok) return out.problem;
    setCodes(null);
    props.onChange();
    return null;
  });
  const renew = useSubmit(async (e: Event) => {
    const v = formValues(e);
    const out = await read(await client.regenerateRecoveryCodes(...typed(v)));
    if (!out.ok) return out.problem;
    setCodes(out.data.recoveryCodes);
    return null;
  });
  return (
    <Section title="Authenticator app (TOTP)">
      {codes ? <RecoveryCodes codes={codes} /> : null}
      {props.me.mfa.totp ? (
        <>
          <p>
            <strong>On.</strong> Sign-in asks for a code from your app.
          </p>
          <form onSubmit={renew.submit} aria-label="New recovery codes">
            <CurrentPassword me={props.me} problem={renew.problem} />
            <Field
              label="Authenticator code"
              name="code"
              autocomplete="one-time-code"
              required={hasPassword(props.me)}
              problem={renew.problem}
            />
            <ProblemBox problem={renew.problem} />
            <Submit busy={renew.busy}>New recovery codes</Submit>
          </form>
          <form onSubmit={off.submit} aria-label="Turn TOTP off">
            <CurrentPassword me={props.me} problem={off.problem} />
            <Field
              label="Authenticator or recovery code"
              name="code"
              autocomplete="one-time-code"
              required={hasPassword(props.me)}
              problem={off.problem}
            />
            <ProblemBox problem={off.problem} />
            <Submit busy={off.busy}>Turn off</Submit>
          </form>
        </>
      ) : pending ? (
        <form onSubmit={confirm.submit} aria-label="Confirm TOTP">
          <p>Scan this with your authenticator app, or type the key, then enter the code it shows.</p>
          <QrCode text={pending.otpauthUri} />
          <p>
            Key: <code class="secret">{pending.secret}</code>
          </p>
          <Field label="Code from the app" name="code" autocomplete="one-time-code" inputmode="numeric" problem={confirm.problem} />
          <label class="check">
            <input type="checkbox" name="endOtherSessions" checked /> Sign out my other sessions
          </label>
          <ProblemBox problem={confirm.problem} />
          <Submit busy={confirm.busy}>Turn on</Submit>
        </form>
      ) : (
        <form onSubmit={start.submit} aria-label="Set up TOTP">
          <p>Off. Add a second step to sign-in with an authenticator app.</p>
          <CurrentPassword me={props.me} problem={start.problem} />
          <ProblemBox problem={start.problem} />
          <Submit busy={start.busy}>Set up</Submit>
        </form>
      )}
    </Section>
  );
}

/** The step-up of adding or removing a passkey: the current password, and a code with TOTP on. */
function StepUpFields(props: { me: Me; problem: Problem | null }) {
  return (
    <>
      <CurrentPassword me={props.me} problem={props.problem} />
      {props.me.mfa.totp ? (
        <Field
          label="Authenticator or recovery code"
          name="code"
          autocomplete="one-time-code"
          required={hasPassword(props.me)}
          problem={props.problem}
        />
      ) : null}
    </>
  );
}

function Passkeys(props: { me: Me; onChange: () => void }) {
  const [items, setItems] = useState<Passkey[]>([]);
  const [removing, setRemoving] = useState<Passkey | null>(null);
  const load = async () => {
    const out = await read(await client.passkeys());
    if (out.ok) setItems(out.data.items);
    return out.ok ? null : out.problem;
  };
  // Also when the count changes elsewhere (a password change that removed them).
  useEffect(() => void load(), [props.me.mfa.passkeys]);
  const add = useSubmit(async (e: Event) => {
    const v = formValues(e);
    const opts = await read(await client.passkeyRegistrationOptions(...typed(v)));
    if (!opts.ok) return opts.problem;
    let response: Awaited<ReturnType<typeof startRegistration>>;
    try {
      // As JSON the options' binary extension inputs lose their type (the service sends none).
      response = await startRegistration({ optionsJSON: opts.data as Parameters<typeof startRegistration>[0]['optionsJSON'] });
    } catch (err) {
      return { status: 0, code: 'passkey_cancelled', detail: `No passkey was made (${err instanceof Error ? err.name : 'cancelled'})` };
    }
    const out = await read(await client.addPasskey(v.name ?? '', response, { endOtherSessions: v.endOtherSessions === 'on' }));
    if (!out.ok) return out.problem;
    (e.target as HTMLFormElement).reset();
    props.onChange();
    return load();
  });
  const remove = useSubmit(async (e: Event) => {
    const v = formValues(e);
    if (!removing) return null;
    const out = await read(await client.removePasskey(removing.id, ...typed(v)), [204]);
    if (!out.ok) return out.problem;
    setRemoving(null);
    props.onChange();
    return load();
  });
  return (
    <Section title="Passkeys">
      {items.length === 0 ? <p>No passkeys yet.</p> : null}
      <ul class="list" aria-label="Your passkeys">
        {items.map((p) => (
          <li>
            <span>
              <strong>{p.name}</strong> · added {when(p.createdAt)} · last used {when(p.lastUsedAt)}
            </span>
            <button
              type="button"
              class="small"
              onClick={() => {
                remove.setProblem(null);
                setRemoving(p);
              }}
              aria-label={`Remove ${p.name}`}
            >
              Remove
            </button>
          </li>
        ))}
      </ul>
      {removing ? (
        <form onSubmit={remove.submit} aria-label={`Confirm: remove ${removing.name}`}>
          <p>
            Remove <strong>{removing.name}</strong>? Confirm it is you:
          </p>
          <StepUpFields me={props.me} problem={remove.problem} />
          <ProblemBox problem={remove.problem} />
          <div class="actions">
            <Submit busy={remove.busy}>Remove the passkey</Submit>
            <button type="button" class="secondary" onClick={() => setRemoving(null)}>
              Cancel
            </button>
          </div>
        </form>
      ) : null}
      <form onSubmit={add.submit} aria-label="Add a passkey">
        <Field label="Name for the new passkey" name="name" value="My passkey" problem={add.problem} />
        <StepUpFields me={props.me} problem={add.problem} />
        <label class="check">
          <input type="checkbox" name="endOtherSessions" /> Sign out my other sessions
        </label>
        <ProblemBox problem={add.problem} />
        <Submit busy={add.busy}>Add a passkey</Submit>
      </form>
    </Section>
  );
}

/** The words a page shows for the step-up and last-method refusals of unlinking. */
function unlinkProblem(p: Problem, signInAgain: string): Problem {
  if (p.code === 'last_sign_in_method')
    return {
      ...p,
      detail:
        'This is the only way left to sign in to your account, so it stays linked. Add a password (Forgot your password? on the sign-in page mails a link) or a passkey first.',
    };
  if (p.code === 'reauthentication_required')
    return { ...p, detail: `To unlink, sign in again first (${signInAgain}), then come back here within a few minutes.` };
  return p;
}

/**
 * The external identity providers this account signs in with: unlink one
 * (the step-up: the current password, and a code with TOTP on; a user
 * without a password proves it with a recent sign-in instead), or link an
 * enabled provider not linked yet (a plain navigation through the provider).
 */
function LinkedIdentities(props: { me: Me }) {
  const [items, setItems] = useState<Identity[]>([]);
  const [providers, setProviders] = useState<ExternalProvider[]>([]);
  const [removing, setRemoving] = useState<Identity | null>(null);
  const load = useSubmit(async () => {
    const out = await read(await client.identities());
    if (!out.ok) return out.problem;
    setItems(out.data.items);
    return null;
  });
  useEffect(() => {
    void load.submit();
    void enabledProviders().then(setProviders);
  }, []);
  const nameOf = (i: Identity) => i.providerName || i.provider;
  // Without a password (signed up through a provider) the recent sign-in is the proof; the field shows when the API says there is one, or cannot say.
  const remove = useSubmit(async (e: Event) => {
    const v = formValues(e);
    if (!removing) return null;
    const out = await read(await client.unlinkIdentity(removing.id, ...typed(v)), [204]);
    if (!out.ok) {
      const again = items.find((i) => i.id === removing.id);
      return unlinkProblem(out.problem, again ? `for example with ${nameOf(again)}` : 'sign out and in');
    }
    setRemoving(null);
    await load.submit();
    return null;
  });
  const linkable = providers.filter((p) => !items.some((i) => i.provider === p.id));
  return (
    <Section title="Linked sign-in methods">
      {items.length === 0 ? <p>No identity provider linked.</p> : null}
      <ul class="list" aria-label="Your linked sign-in methods">
        {items.map((i) => (
          <li>
            <span>
              <strong>{nameOf(i)}</strong>
              {i.email ? ` · ${i.email}` : ''} · linked {when(i.linkedAt)} · last used {when(i.lastUsedAt)}
            </span>
            <button
              type="button"
              class="small"
              aria-label={`Unlink ${nameOf(i)}`}
              onClick={() => {
                remove.setProblem(null);
                setRemoving(i);
              }}
            >
              Unlink
            </button>
          </li>
        ))}
      </ul>
      <ProblemBox problem={load.problem} />
      {removing ? (
        <form onSubmit={remove.submit} aria-label={`Confirm: unlink ${nameOf(removing)}`}>
          <p>
            Unlink <strong>{nameOf(removing)}</strong>? You will no longer sign in with it.
            {' Confirm it is you:'}
          </p>
          <StepUpFields me={props.me} problem={remove.problem} />
          <ProblemBox problem={remove.problem} />
          <div class="actions">
            <Submit busy={remove.busy}>Unlink</Submit>
            <button type="button" class="secondary" onClick={() => setRemoving(null)}>
              Cancel
            </button>
          </div>
        </form>
      ) : null}
      {linkable.length ? (
        <p class="hint">
          Linking goes through the provider's sign-in and needs a recent sign-in here: if yours was a while ago, sign out and in first.
        </p>
      ) : null}
      {linkable.length ? (
        <div class="actions">
          {linkable.map((p) => (
            <a class="button small" href={externalSignInUrl(p.id, '/account', true)}>
              {`Link ${p.name}`}
            </a>
          ))}
        </div>
      ) : null}
    </Section>
  );
}

/** The apps the user allowed to sign them in (OAuth grants), each revocable with every token issued under it. */
function ConnectedApps() {
  const [items, setItems] = useState<Grant[]>([]);
  const action = useSubmit(async (run?: () => Promise<Response>) => {
    if (run) {
      const out = await read(await run(), [204]);
      if (!out.ok) return out.problem;
    }
    const list = await read(await api.users.me.grants.$get());
    if (!list.ok) return list.problem;
    setItems(list.data.items);
    return null;
  });
  useEffect(() => void action.submit(), []);
  return (
    <Section title="Connected apps">
      {items.length === 0 ? <p>No apps connected.</p> : null}
      <ul class="list" aria-label="Your connected apps">
        {items.map((g) => (
          <li>
            <span>
              <strong>{g.clientName}</strong> · {g.scopes.join(', ')} · allowed {when(g.updatedAt)}
            </span>
            <button
              type="button"
              class="small"
              aria-label={`Revoke ${g.clientName}`}
              onClick={() => action.submit(() => api.users.me.grants[':clientId'].$delete({ param: { clientId: g.clientId } }))}
            >
              Revoke
            </button>
          </li>
        ))}
      </ul>
      <ProblemBox problem={action.problem} />
    </Section>
  );
}

function Data(props: { me: Me }) {
  const exportIt = useSubmit(async () => {
    const res = await client.exportAccount();
    if (res.status !== 200) {
      const out = await read(res);
      return out.ok ? null : out.problem;
    }
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = `auth-system-export-${props.me.id}.json`;
    a.click();
    URL.revokeObjectURL(url);
    return null;
  });
  const remove = useSubmit(async (e: Event) => {
    const v = formValues(e);
    const out = await read(await client.deleteAccount(...typed(v)), [204]);
    if (!out.ok) return out.problem;
    await endBrowserSession();
    location.assign('/login');
    return null;
  });
  return (
    <Section title="Your data">
      <button type="button" class="secondary" onClick={() => exportIt.submit()} disabled={exportIt.busy}>
        Download everything held about you (JSON)
      </button>
      <ProblemBox problem={exportIt.problem} />
      <details>
        <summary>Delete the account</summary>
        <form onSubmit={remove.submit} aria-label="Delete the account">
          <CurrentPassword me={props.me} problem={remove.problem} />
          {props.me.mfa.totp ? (
            <Field
              label="Authenticator code"
              name="code"
              autocomplete="one-time-code"
              required={hasPassword(props.me)}
              problem={remove.problem}
            />
          ) : null}
          <ProblemBox problem={remove.problem} />
          <Submit busy={remove.busy}>Delete my account and everything in it</Submit>
        </form>
      </details>
    </Section>
  );
}
