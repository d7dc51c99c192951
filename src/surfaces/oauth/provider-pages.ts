// The provider's own pages, rendered on the server: the consent page, the
// logout confirmation, "You are signed out" and the error page of an
// authorization that cannot go back to its client. Hosted pages under the
// pages' policy, except that a form whose answer redirects to a client also
// allows that client's origin in form-action (browsers apply form-action to
// the redirect that follows the submission).
import { PAGE_CSP } from '../../lib/html-csp.js';
import { SCOPE_DESCRIPTIONS, type KnownScope } from '../../provider/scopes.js';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** The source form-action needs for a redirect to `uri`: its origin, or its scheme for a native app's private-use URI. */
function formActionSource(uri: string): string | null {
  try {
    const u = new URL(uri);
    if (u.protocol === 'http:' || u.protocol === 'https:') return u.origin;
    return /^[a-z][a-z0-9+.-]*:$/.test(u.protocol) ? u.protocol : null;
  } catch {
    return null;
  }
}

/** PAGE_CSP, with form-action also allowing where the form's answer redirects. */
export function pageCsp(redirectUri?: string | null): string {
  const extra = redirectUri ? formActionSource(redirectUri) : null;
  return extra === null ? PAGE_CSP : PAGE_CSP.replace("form-action 'self'", `form-action 'self' ${extra}`);
}

export const pageHeaders = (redirectUri?: string | null) => ({
  'Content-Security-Policy': pageCsp(redirectUri),
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
  // Not the service's no-referrer: under it Chromium sends `Origin: null` with a
  // form post, and the forms here are checked for the service's own Origin.
  // same-origin still tells other sites nothing.
  'Referrer-Policy': 'same-origin',
});

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · auth-system</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/app.css">
</head>
<body>
<main class="page">
${body}
</main>
</body>
</html>
`;
}

const hidden = (fields: Record<string, string>) =>
  Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('\n');

export function errorPage(error: string, description: string, requestId: string): string {
  return layout(
    'Sign-in request refused',
    `<h1>This sign-in request cannot continue</h1>
<p>${escapeHtml(description)}</p>
<p>Error: <code>${escapeHtml(error)}</code> · Request id: <code>${escapeHtml(requestId)}</code></p>`,
  );
}

export function consentPage(opts: { clientName: string; scopes: readonly KnownScope[]; interaction: string; csrfToken: string }): string {
  const items = opts.scopes.map((s) => `<li><strong>${escapeHtml(s)}</strong>: ${escapeHtml(SCOPE_DESCRIPTIONS[s])}</li>`).join('\n');
  return layout(
    `Allow ${opts.clientName}?`,
    `<h1>${escapeHtml(opts.clientName)} wants to use your account</h1>
<p>If you allow it, ${escapeHtml(opts.clientName)} may:</p>
<ul>
${items || '<li>Know that you signed in</li>'}
</ul>
<form method="post" action="/oauth2/consent">
${hidden({ interaction: opts.interaction, csrf_token: opts.csrfToken })}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>`,
  );
}

export function logoutConfirmPage(opts: { fields: Record<string, string>; csrfToken: string }): string {
  return layout(
    'Sign out?',
    `<h1>Sign out?</h1>
<p>An app asked to sign you out of your account on this device.</p>
<form method="post" action="/oauth2/logout/confirm">
${hidden({ ...opts.fields, csrf_token: opts.csrfToken })}
<button type="submit">Sign out</button>
</form>`,
  );
}

export const signedOutPage = () => layout('Signed out', '<h1>You are signed out</h1>\n<p>You can close this window.</p>');

/**
 * Where an external sign-in (GET /auth/external/:provider/callback) could not
 * go on: the words, the stable code beside them and a way back.
 */
export function externalErrorPage(opts: {
  code: string;
  description: string;
  requestId: string;
  back: { href: string; label: string };
  /** The identity provider's own `error` code, when it sent a well-formed one. */
  providerError?: string;
}): string {
  const upstream = opts.providerError ? ` · The provider said: <code>${escapeHtml(opts.providerError)}</code>` : '';
  return layout(
    'Sign-in did not complete',
    `<h1>Sign-in did not complete</h1>
<p>${escapeHtml(opts.description)}</p>
<p>Error: <code>${escapeHtml(opts.code)}</code>${upstream} · Request id: <code>${escapeHtml(opts.requestId)}</code></p>
<p><a href="${escapeHtml(opts.back.href)}">${escapeHtml(opts.back.label)}</a></p>`,
  );
}
