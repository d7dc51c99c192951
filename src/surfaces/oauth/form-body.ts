// The OAuth endpoints' bodies: application/x-www-form-urlencoded (RFC 6749
// §3.2, OpenID Connect Core §3.1.2.1), parsed once into c.var.form. As the
// RFCs say: a parameter without a value is as if omitted, a repeated one is
// invalid_request, and unknown parameters are the endpoint's to ignore.
import { createMiddleware } from 'hono/factory';
import { requestHasBody, requestHeader } from '../../lib/node-fast-path.js';
import { oauthError } from './errors.js';

const FORM_TYPE = 'application/x-www-form-urlencoded';
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The form's parameters by name (no prototype: `__proto__` is a name like any other). Empty without a body. */
export type FormParams = Readonly<Record<string, string>>;

export type FormBodyVariables = { form: FormParams };

export function parseForm(text: string): FormParams {
  const out: Record<string, string> = Object.create(null);
  for (const [name, value] of new URLSearchParams(text)) {
    if (value === '') continue;
    if (Object.hasOwn(out, name)) oauthError('invalid_request', `The parameter ${name} is repeated`);
    out[name] = value;
  }
  return out;
}

const EMPTY: FormParams = Object.freeze(Object.create(null));

export const formBody = () =>
  createMiddleware<{ Variables: FormBodyVariables }>(async (c, next) => {
    let form = EMPTY;
    if (BODY_METHODS.has(c.req.method) && requestHasBody(c)) {
      const media = (requestHeader(c, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      if (media !== FORM_TYPE) oauthError('invalid_request', `Send the body as ${FORM_TYPE}`);
      form = parseForm(await c.req.text());
    }
    c.set('form', form);
    await next();
  });
