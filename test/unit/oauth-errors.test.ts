// The OAuth surface's error mapping: contention and an unreachable database are
// 503 temporarily_unavailable with Retry-After, never a 500 server_error.
import { describe, expect, it } from 'vitest';
import { toOAuthError } from '../../src/surfaces/oauth/errors.js';

const wrapped = (code: string) => Object.assign(new Error('Failed query'), { cause: Object.assign(new Error('pg'), { code }) });

describe('toOAuthError', () => {
  it('answers a transaction that exhausted its serialization retries with 503 and Retry-After: 1', () => {
    for (const code of ['40001', '40P01']) {
      const e = toOAuthError(wrapped(code));
      expect([e.error, e.status, e.headers?.['Retry-After']]).toEqual(['temporarily_unavailable', 503, '1']);
    }
  });

  it('keeps 503 with Retry-After: 5 for an unreachable database, and 500 for anything else', () => {
    const down = toOAuthError(wrapped('ECONNREFUSED'));
    expect([down.error, down.status, down.headers?.['Retry-After']]).toEqual(['temporarily_unavailable', 503, '5']);
    expect(toOAuthError(new Error('bug')).status).toBe(500);
  });
});
