// The hosted account pages: sign-in (with the MFA step and passkeys),
// registration, forgotten password, reset and email confirmation. Mailed
// links carry their token in the fragment, read here and never sent to a server log.
import { startAuthentication } from '@simplewebauthn/browser';
import { useEffect, useState } from 'hono/jsx/dom';
import {
  api,
  client,
  enabledProviders,
  type ExternalProvider,
  externalSignInUrl,
  read,
  startBrowserSession,
  type Problem,
} from '../api.js';
import { Field, formValues, Layout, NewAccountFields, Notice, ProblemBox, Submit, useSubmit } from '../ui.js';

/** An authorization waiting for this sign-in (the provider's resume URL), exactly that shape. */
const RESUME = /^\/oauth2\/authorize\?interaction=[A-Za-z0-9_-]{16,64}$/;

/** Where to go after signing in: a path of this site only, or an authorization to resume. */
function nextPath(): string {
  const next = new URLSearchParams(location.search).get('next');
  return next && (/^\/(?!\/)[\w\-/]*$/.test(next) || RESUME.test(next)) ? next : '/account';
}

const resumesAuthorization = () => RESUME.test(nextPath());

/**
 * After every successful sign-in: the browser session first (the provider
 * trusts only its cookie), then a full navigation on. An authorization cannot
 * resume without it, so its failure is shown there instead.
 */
async function afterSignIn(): Promise<Problem | null> {
  const started = await startBrowserSession();
  if (!started && resumesAuthorization()) {
    return { status: 0, code: 'browser_session_failed', detail: 'Signed in, but the app could not be continued: try again' };
  }
  location.assign(nextPath());
  return null;
}

const fragmentToken = () => new URLSearchParams(location.hash.slice(1)).get('token');

type Step = { mfaToken: string; methods: string[] };

const METHOD = /^[a-z_]{1,32}$/;

/**
 * The MFA step an external sign-in's callback hands over in the fragment
 * (`#mfa=<token>&methods=totp,passkey`): read once, then cleared from the
 * address bar and the history entry, so it is neither bookmarked nor shared.
 */
function fragmentStep(): Step | null {
  const hash = new URLSearchParams(location.hash.slice(1));
  const mfaToken = hash.get('mfa');
  if (!mfaToken) return null;
  history.replaceState(history.state, '', `${location.pathname}${location.search}`);
  const methods = (hash.get('methods') ?? '').split(',').filter((m) => METHOD.test(m));
  return { mfaToken, methods: methods.length ? methods : ['totp', 'recovery_code'] };
}

/** "Continue with <name>" for every enabled identity provider: plain links to the external sign-in, back to `next`. */
function ProviderButtons(props: { label: string }) {
  const [providers, setProviders] = useState<ExternalProvider[]>([]);
  useEffect(() => void enabledProviders().then(setProviders), []);
  if (providers.length === 0) return null;
  const next = nextPath();
  return (
    <nav class="card providers" aria-label={props.label}>
      {providers.map((p) => (
        <a class="button provider" href={externalSignInUrl(p.id, next)}>
          Continue with {p.name}
        </a>
      ))}
    </nav>
  );
}

/** A passkey ceremony in the browser; the browser's own refusal is shown like a problem. */
async function withPasskey(
  options: ReturnType<typeof client.passkeyOptions>,
  finish: (assertion: Awaited<ReturnType<typeof startAuthentication>>) => Promise<Response>,
) {
  const opts = await read(await options);
  if (!opts.ok) return opts.problem;
  let assertion: Awaited<ReturnType<typeof startAuthentication>>;
  try {
    // As JSON the options' binary extension inputs lose their type (the service sends none).
    assertion = await startAuthentication({ optionsJSON: opts.data as Parameters<typeof startAuthentication>[0]['optionsJSON'] });
  } catch (err) {
    return {
      status: 0,
      code: 'passkey_cancelled',
      detail: `No passkey was used (${err instanceof Error ? err.name : 'cancelled'})`,
    } as Problem;
  }
  const done = await read(await finish(assertion));
  if (!done.ok) return done.problem;
  return afterSignIn();
}

export function LoginPage() {
  // Read before the first render: the fragment goes from the address bar at once.
  const [step, setStep] = useState<Step | null>(fragmentStep);
  const password = useSubmit(async (e: Event) => {
    const v = formValues(e);
    const res = await client.login(v.email ?? '', v.password ?? '');
    if (res.status === 200) return afterSignIn();
    const out = await read(res);
    if (!out.ok && out.problem.code === 'mfa_required') {
      setStep({ mfaToken: String(out.problem.mfaToken), methods: (out.problem.methods as string[]) ?? [] });
      return null;
    }
    return out.ok ? null : out.problem;
  });
  const passkey = useSubmit(() => withPasskey(client.passkeyOptions(), (a) => client.passkeyLogin(a)));

  if (step) return <MfaStep step={step} onRestart={() => setStep(null)} />;
  // Always the form, even when this tab holds tokens: an app may ask for a fresh sign-in (prompt=login, max_age).
  return (
    <Layout title="Sign in">
      {resumesAuthorization() ? <p class="who">Sign in to continue to the app.</p> : null}
      <form onSubmit={password.submit} class="card" aria-label="Sign in with your password">
        <Field label="Email" name="email" type="email" autocomplete="username webauthn" autofocus problem={password.problem} />
        <Field label="Password" name="password" type="password" autocomplete="current-password" problem={password.problem} />
        <ProblemBox problem={password.problem} />
        <Submit busy={password.busy}>Sign in</Submit>
      </form>
      <div class="card">
        <button type="button" class="secondary" onClick={() => passkey.submit()} disabled={passkey.busy}>
          Sign in with a passkey
        </button>
        <ProblemBox problem={passkey.problem} />
      </div>
      <ProviderButtons label="Sign in with another provider" />
      <p class="links">
        <a href={`/register${location.search}`}>Create an account</a> · <a href="/forgot-password">Forgot your password?</a>
      </p>
    </Layout>
  );
}

function MfaStep(props: { step: Step; onRestart: () => void }) {
  const { mfaToken, methods } = props.step;
  const code = useSubmit(async (e: Event) => {
    const res = await client.verifyMfa(mfaToken, { code: formValues(e).code ?? '' });
    if (res.status === 200) return afterSignIn();
    const out = await read(res);
    return out.ok ? null : out.problem;
  });
  const passkey = useSubmit(() => withPasskey(client.passkeyOptions({ mfaToken }), (a) => client.verifyMfa(mfaToken, { passkey: a })));
  const dead = code.problem?.code === 'invalid_mfa_token' || passkey.problem?.code === 'invalid_mfa_token';
  return (
    <Layout title="Second step">
      {methods.includes('totp') || methods.includes('recovery_code') ? (
        <form onSubmit={code.submit} class="card" aria-label="Sign in with a code">
          <Field
            label="Code from your authenticator app, or a recovery code"
            name="code"
            autocomplete="one-time-code"
            inputmode="text"
            problem={code.problem}
          />
          <ProblemBox problem={code.problem} />
          <Submit busy={code.busy}>Continue</Submit>
        </form>
      ) : null}
      {methods.includes('passkey') ? (
        <div class="card">
          <button type="button" onClick={() => passkey.submit()} disabled={passkey.busy}>
            Use a passkey
          </button>
          <ProblemBox problem={passkey.problem} />
        </div>
      ) : null}
      {dead ? (
        <button type="button" class="secondary" onClick={props.onRestart}>
          Start again
        </button>
      ) : null}
    </Layout>
  );
}

export function RegisterPage() {
  const [done, setDone] = useState<string | null>(null);
  const form = useSubmit(async (e: Event) => {
    const v = formValues(e);
    const out = await read(
      await api.auth.register.$post({ json: { email: v.email ?? '', password: v.password ?? '', name: v.name ?? '' } }),
    );
    if (!out.ok) return out.problem;
    setDone(out.data.user.email);
    return null;
  });
  return (
    <Layout title="Create an account">
      {done ? (
        <Notice>
          The account for {done} is ready. If a confirmation mail was sent, open its link; then <a href="/login">sign in</a>.
        </Notice>
      ) : (
        <form onSubmit={form.submit} class="card" aria-label="Create an account">
          <NewAccountFields problem={form.problem} />
          <ProblemBox problem={form.problem} />
          <Submit busy={form.busy}>Create the account</Submit>
        </form>
      )}
      {done ? null : <ProviderButtons label="Sign up with another provider" />}
      <p class="links">
        <a href="/login">Already have an account? Sign in</a>
      </p>
    </Layout>
  );
}

export function ForgotPage() {
  const [message, setMessage] = useState<string | null>(null);
  const form = useSubmit(async (e: Event) => {
    const out = await read(await api.auth.password.forgot.$post({ json: { email: formValues(e).email ?? '' } }), [202]);
    if (!out.ok) return out.problem;
    setMessage(out.data.message);
    return null;
  });
  return (
    <Layout title="Forgot your password?">
      {message ? (
        <Notice>{message}</Notice>
      ) : (
        <form onSubmit={form.submit} class="card" aria-label="Mail me a reset link">
          <Field label="Email" name="email" type="email" autocomplete="email" problem={form.problem} />
          <ProblemBox problem={form.problem} />
          <Submit busy={form.busy}>Mail me a link</Submit>
        </form>
      )}
      <p class="links">
        <a href="/login">Back to sign-in</a>
      </p>
    </Layout>
  );
}

export function ResetPage() {
  const token = fragmentToken();
  const [needsCode, setNeedsCode] = useState(false);
  const [done, setDone] = useState<{ passkeysRemoved: boolean } | null>(null);
  const form = useSubmit(async (e: Event) => {
    const v = formValues(e);
    const removePasskeys = v.removePasskeys === 'on';
    const res = await client.resetPassword(token ?? '', v.password ?? '', needsCode ? v.code : undefined, { removePasskeys });
    if (res.status === 204) {
      setDone({ passkeysRemoved: removePasskeys });
      return null;
    }
    const out = await read(res);
    if (!out.ok && out.problem.code === 'mfa_code_required') setNeedsCode(true);
    return out.ok ? null : out.problem;
  });
  if (!token) return <Layout title="Choose a new password">{<Notice>This page opens from the link in the reset mail.</Notice>}</Layout>;
  return (
    <Layout title="Choose a new password">
      {done ? (
        <Notice>
          Your password is changed{done.passkeysRemoved ? ', your passkeys are removed' : ''} and every session has ended.{' '}
          <a href="/login">Sign in</a> with the new one.
        </Notice>
      ) : (
        <form onSubmit={form.submit} class="card" aria-label="Choose a new password">
          <Field
            label="New password"
            name="password"
            type="password"
            autocomplete="new-password"
            hint="8 to 128 characters"
            problem={form.problem}
          />
          {needsCode ? (
            <Field
              label="Code from your authenticator app, or a recovery code"
              name="code"
              autocomplete="one-time-code"
              problem={form.problem}
            />
          ) : null}
          <label class="check">
            <input type="checkbox" name="removePasskeys" /> Also remove my passkeys
          </label>
          <ProblemBox problem={form.problem} />
          <Submit busy={form.busy}>Set the password</Submit>
        </form>
      )}
    </Layout>
  );
}

export function VerifyPage() {
  const token = fragmentToken();
  const [state, setState] = useState<{ email?: string; problem?: Problem } | null>(null);
  useEffect(() => {
    if (!token) return;
    void (async () => {
      const out = await read(await client.verifyEmail(token));
      setState(out.ok ? { email: out.data.user.email } : { problem: out.problem });
    })();
  }, []);
  return (
    <Layout title="Confirm your email">
      {!token ? <Notice>This page opens from the link in the confirmation mail.</Notice> : null}
      {token && !state ? <p aria-live="polite">Confirming…</p> : null}
      {state?.email ? (
        <Notice>
          {state.email} is confirmed. <a href="/login">Sign in</a>
        </Notice>
      ) : null}
      <ProblemBox problem={state?.problem ?? null} />
    </Layout>
  );
}
