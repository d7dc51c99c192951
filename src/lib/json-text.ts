// A JSON body that is already a string (a cached serialization), answered
// with the type c.json() would give it, so the typed client sees no difference.
import type { Context, TypedResponse } from 'hono';
import type { JSONParsed } from 'hono/utils/types';

const JSON_TYPE = { 'Content-Type': 'application/json' } as const;

export function jsonText<T>(c: Context, text: string): Response & TypedResponse<JSONParsed<T>, 200, 'json'> {
  return c.body(text, 200, JSON_TYPE) as unknown as Response & TypedResponse<JSONParsed<T>, 200, 'json'>;
}
