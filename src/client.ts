// Typed RPC client for TypeScript frontends: hc<AppType> plus token handling.
// Imports only types from the server, so a bundle of this file carries hono's
// small client and nothing else (no database, Redis or argon2 code).
import { hc } from 'hono/client';
// AppType is not re-exported: it names the server's internals (database, logger...),
// which a frontend cannot resolve. `Client` carries the routes' types.
import type { AppType } from './app.js';

export type Tokens = { accessToken: string; refreshToken: string };

export type ClientOptions = {
  /** Where tokens live (storage, a state manager...). Defaults to memory. */
  getTokens?: () => Tokens | null | undefined | Promise<Tokens | null | undefined>;
  /** Called whenever the client learns new tokens (login, refresh) or drops them (logout, a failed refresh). */
  onTokens?: (tokens: Tokens | null) => void | Promise<void>;
  /** A fetch implementation (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
};

const REFRESH_PATH = '/auth/refresh';

/**
 * The body of a step-up: the current password when the account has one (a user
 * without a password passes `undefined` and is judged by a recent sign-in), and a
 * code with TOTP on.
 */
const stepUp = (currentPassword: string | undefined, code?: string) => ({
  ...(currentPassword !== undefined ? { currentPassword } : {}),
  ...(code !== undefined ? { code } : {}),
});

export function createClient(baseUrl: string, options: ClientOptions = {}) {
  const base = baseUrl.replace(/\/+$/, '');
  const baseFetch: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  let held: Tokens | null = null;
  let refreshing: Promise<boolean> | null = null;

  const getTokens = async (): Promise<Tokens | null> => (options.getTokens ? ((await options.getTokens()) ?? null) : held);
  const setTokens = async (tokens: Tokens | null): Promise<void> => {
    held = tokens;
    await options.onTokens?.(tokens);
  };

  /** One refresh in flight at a time: concurrent 401s wait for the same rotation. */
  const refreshOnce = (refreshToken: string): Promise<boolean> =>
    (refreshing ??= (async () => {
      try {
        const res = await baseFetch(`${base}${REFRESH_PATH}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...options.headers },
          body: JSON.stringify({ refreshToken }),
        });
        if (!res.ok) {
          // The session is over (reused, revoked or expired token): forget it.
          if (res.status === 401) await setTokens(null);
          return false;
        }
        const pair = (await res.json()) as Tokens;
        await setTokens({ accessToken: pair.accessToken, refreshToken: pair.refreshToken });
        return true;
      } finally {
        refreshing = null;
      }
    })());

  const authFetch: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    const send = (accessToken: string | undefined) => {
      const headers = new Headers(request.headers);
      if (accessToken && !headers.has('authorization')) headers.set('authorization', `Bearer ${accessToken}`);
      return baseFetch(new Request(request.clone(), { headers }));
    };
    const tokens = await getTokens();
    const res = await send(tokens?.accessToken);
    if (res.status !== 401 || !tokens?.refreshToken || new URL(request.url).pathname.endsWith(REFRESH_PATH)) return res;
    const problem = (await res
      .clone()
      .json()
      .catch(() => null)) as { code?: string } | null;
    if (problem?.code !== 'invalid_token') return res;
    // Another request may have rotated the tokens meanwhile: use those, else refresh.
    const current = await getTokens();
    if (current && current.accessToken !== tokens.accessToken) return send(current.accessToken);
    if (!(await refreshOnce(tokens.refreshToken))) return res;
    return send((await getTokens())?.accessToken);
  };

  const api = hc<AppType>(base, { fetch: authFetch, ...(options.headers ? { headers: options.headers } : {}) });

  return {
    /** The typed routes: `client.api.users.me.$get()`. */
    api,
    getTokens,
    setTokens,
    // The helpers below read a 200's tokens from a clone: the caller can still read the response.
    /**
     * Sign in and keep the tokens. A user with a second factor gets 401
     * `mfa_required` whose body has `mfaToken` and `methods`: finish with verifyMfa().
     */
    async login(email: string, password: string) {
      const res = await api.auth.login.$post({ json: { email, password } });
      if (res.status === 200) {
        const pair = (await res.clone().json()) as Tokens;
        await setTokens({ accessToken: pair.accessToken, refreshToken: pair.refreshToken });
      }
      return res;
    },
    /** The MFA step of a sign-in: the mfaToken and a TOTP or recovery code, or a passkey assertion; keeps the tokens. */
    async verifyMfa(mfaToken: string, answer: { code: string } | { passkey: PasskeyAssertion }) {
      const res = await api.auth.mfa.verify.$post({ json: { mfaToken, ...answer } });
      if (res.status === 200) {
        const pair = (await res.clone().json()) as Tokens;
        await setTokens({ accessToken: pair.accessToken, refreshToken: pair.refreshToken });
      }
      return res;
    },
    /** Options for navigator.credentials.get(): passwordless (optionally for an email), or for an MFA step's mfaToken. */
    passkeyOptions: (by: { email?: string } | { mfaToken: string } = {}) => api.auth.passkey.options.$post({ json: by }),
    /** Passwordless sign-in with a passkey assertion; keeps the tokens. */
    async passkeyLogin(response: PasskeyAssertion) {
      const res = await api.auth.passkey.login.$post({ json: { response } });
      if (res.status === 200) {
        const pair = (await res.clone().json()) as Tokens;
        await setTokens({ accessToken: pair.accessToken, refreshToken: pair.refreshToken });
      }
      return res;
    },
    /** TOTP, step 1: a pending secret and its otpauth:// URI (show it as a QR code). */
    enrolTotp: (currentPassword: string | undefined) => api.users.me.mfa.totp.$post({ json: stepUp(currentPassword) }),
    /** TOTP, step 2: the first code turns it on; the answer's recovery codes are shown once. `endOtherSessions` signs out every other session. */
    confirmTotp: (code: string, endOtherSessions?: boolean) =>
      api.users.me.mfa.totp.confirm.$post({ json: { code, ...(endOtherSessions === undefined ? {} : { endOtherSessions }) } }),
    /** Turn TOTP off (the current password and a TOTP or recovery code). */
    disableTotp: (currentPassword: string | undefined, code: string) =>
      api.users.me.mfa.totp.$delete({ json: stepUp(currentPassword, code) }),
    /** A new set of recovery codes (the old ones stop working). */
    regenerateRecoveryCodes: (currentPassword: string | undefined, code?: string) =>
      api.users.me.mfa['recovery-codes'].$post({ json: stepUp(currentPassword, code) }),
    /** Registration options for a new passkey (pass to navigator.credentials.create()): the current password, and a code with TOTP on. */
    passkeyRegistrationOptions: (currentPassword: string | undefined, code?: string) =>
      api.users.me.passkeys.options.$post({ json: stepUp(currentPassword, code) }),
    /** Keep the passkey the browser made, under a name; `endOtherSessions` ends your other sessions (this one stays). */
    addPasskey: (name: string, response: PasskeyRegistration, options: { endOtherSessions?: boolean } = {}) =>
      api.users.me.passkeys.$post({ json: { name, response, ...(options.endOtherSessions ? { endOtherSessions: true } : {}) } }),
    /** Your passkeys. */
    passkeys: () => api.users.me.passkeys.$get(),
    /** Remove one of your passkeys (the current password, and a code with TOTP on). */
    removePasskey: (id: string, currentPassword: string | undefined, code?: string) =>
      api.users.me.passkeys[':id'].$delete({ param: { id }, json: stepUp(currentPassword, code) }),
    /** End the session (server side too) and forget the tokens. */
    async logout() {
      const tokens = await getTokens();
      if (tokens) await api.auth.logout.$post({ json: { refreshToken: tokens.refreshToken } });
      await setTokens(null);
    },
    /** Confirm an address with the token from a mailed link's fragment (`#token=…`). */
    verifyEmail: (token: string) => api.auth['verify-email'].$post({ json: { token } }),
    /** Mail a new verification link (202 whether or not the account exists). */
    resendVerification: (email: string) => api.auth['verify-email'].resend.$post({ json: { email } }),
    /** Mail a password-reset link (202 whether or not the account exists). */
    forgotPassword: (email: string) => api.auth.password.forgot.$post({ json: { email } }),
    /**
     * Set a new password with the mailed token. Every session ends (tokens held here are forgotten): sign in again.
     * `removePasskeys` removes every passkey of the account too.
     */
    async resetPassword(token: string, password: string, code?: string, options: { removePasskeys?: boolean } = {}) {
      const res = await api.auth.password.reset.$post({
        json: { token, password, ...(code !== undefined ? { code } : {}), ...(options.removePasskeys ? { removePasskeys: true } : {}) },
      });
      if (res.status === 204) await setTokens(null);
      return res;
    },
    /** Your live sessions, newest first (`current` marks this one). */
    sessions: () => api.users.me.sessions.$get(),
    /** End one of your sessions. */
    endSession: (id: string) => api.users.me.sessions[':id'].$delete({ param: { id } }),
    /** Sign out everywhere else. */
    endOtherSessions: () => api.users.me.sessions.$delete(),
    /** Your identities at upstream providers (sign-in with Google, GitHub...). */
    identities: () => api.users.me.identities.$get(),
    /** Unlink one (a step-up, like removing a passkey); 409 last_sign_in_method when it is the last way in. */
    unlinkIdentity: (id: string, currentPassword: string | undefined, code?: string) =>
      api.users.me.identities[':id'].$delete({ param: { id }, json: stepUp(currentPassword, code) }),
    /** Everything the service holds about you, as one JSON document. */
    exportAccount: () => api.users.me.export.$get(),
    /** Delete your account (with TOTP on, a code too); on success the tokens are forgotten. */
    async deleteAccount(currentPassword: string | undefined, code?: string) {
      const res = await api.users.me.$delete({ json: stepUp(currentPassword, code) });
      if (res.status === 204) await setTokens(null);
      return res;
    },
  };
}

export type Client = ReturnType<typeof createClient>;

/** What PublicKeyCredential.toJSON() gives after navigator.credentials.get() (WebAuthn Level 3 JSON). */
export type PasskeyAssertion = {
  id: string;
  rawId: string;
  type: 'public-key';
  response: { clientDataJSON: string; authenticatorData: string; signature: string; userHandle?: string | null };
  clientExtensionResults?: object;
  authenticatorAttachment?: 'platform' | 'cross-platform' | null;
};

/** What PublicKeyCredential.toJSON() gives after navigator.credentials.create(). */
export type PasskeyRegistration = {
  id: string;
  rawId: string;
  type: 'public-key';
  response: { clientDataJSON: string; attestationObject: string; transports?: string[] };
  clientExtensionResults?: object;
  authenticatorAttachment?: 'platform' | 'cross-platform' | null;
};
