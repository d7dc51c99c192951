// zod validation for json, query and param targets. Failures become
// 400 validation_failed with one entry per field problem.
import { zValidator } from '@hono/zod-validator';
import type { ValidationTargets } from 'hono';
import type { z } from 'zod';
import { problem, type FieldError } from '../lib/problem.js';

export const VALIDATOR_SCHEMA = Symbol('validatorSchema');

export function fieldErrors(issues: readonly z.core.$ZodIssue[]): FieldError[] {
  const out: FieldError[] = [];
  for (const issue of issues) {
    const base = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) out.push({ path: base ? `${base}.${k}` : k, message: 'Unknown field' });
    } else {
      out.push({ path: base, message: issue.message });
    }
  }
  return out;
}

export function validate<T extends z.ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  const mw = zValidator(target, schema, (result) => {
    if (!result.success) {
      const where = target === 'json' ? 'body' : target === 'param' ? 'path' : target;
      problem('validation_failed', `The request ${where} is not valid`, {
        errors: fieldErrors(result.error.issues as z.core.$ZodIssue[]),
      });
    }
  });
  return Object.assign(mw, { [VALIDATOR_SCHEMA]: { target, schema } });
}
