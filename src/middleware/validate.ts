// Request validation with zod schemas, through hono-openapi's validator so the
// same schemas describe the request in the OpenAPI document and type it for
// the RPC client. Failures become 400 validation_failed with one entry per
// field problem.
import type { ValidationTargets } from 'hono';
import { validator } from 'hono-openapi';
import type { z } from 'zod';
import { problem, type FieldError } from '../lib/problem.js';
import { PLAIN_TEXT, unstorableStrings } from '../lib/schemas.js';

type Issue = { path?: readonly (PropertyKey | { key: PropertyKey })[]; message: string; code?: string; keys?: string[] };

export function fieldErrors(issues: readonly Issue[]): FieldError[] {
  const out: FieldError[] = [];
  for (const issue of issues) {
    const base = (issue.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.');
    if (issue.code === 'unrecognized_keys' && issue.keys) {
      for (const k of issue.keys) out.push({ path: base ? `${base}.${k}` : k, message: 'Unknown field' });
    } else {
      out.push({ path: base, message: issue.message });
    }
  }
  return out;
}

export function validate<T extends z.ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  return validator(target, schema, (result) => {
    const where = target === 'json' ? 'body' : target === 'param' ? 'path' : target;
    if (!result.success) {
      problem('validation_failed', `The request ${where} is not valid`, {
        errors: fieldErrors(result.error as readonly Issue[]),
      });
    }
    // Whatever a field's own schema allows, no string the database cannot store gets through.
    const bad = unstorableStrings(result.data);
    if (bad.length > 0) {
      problem('validation_failed', `The request ${where} is not valid`, {
        errors: bad.map((path) => ({ path, message: PLAIN_TEXT.message })),
      });
    }
  });
}
