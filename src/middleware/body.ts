// Request bodies: a size limit (413), JSON only (415), parsed once here so that
// malformed JSON, or JSON nested deeper than MAX_JSON_DEPTH, is 400
// invalid_json before any validator (or any walk over the value) runs.
import { bodyLimit } from 'hono/body-limit';
import type { Context, Next } from 'hono';
import { createMiddleware } from 'hono/factory';
import { problem } from '../lib/problem.js';
import { requestHasBody, requestHeader } from '../lib/node-fast-path.js';

const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i;
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export const limitBody = (maxSize: number) => {
  const tooLarge = () => problem('payload_too_large', `The body exceeds ${maxSize} bytes`);
  const limit = bodyLimit({ maxSize, onError: tooLarge });
  // Only requests that can carry a body pay for it: asking for the body makes
  // the Node adapter build a full Request per GET (profiled: test/bench/README.md).
  // Not async: a GET goes straight on (each async layer costs a promise and a microtask per request).
  return createMiddleware((c, next) => {
    if (!BODY_METHODS.has(c.req.method)) return next();
    // A Content-Length without Transfer-Encoding gives the size up front, and
    // HTTP framing ends the body there: judged from the header alone, like
    // hono's bodyLimit does, but without asking the adapter for the body as a
    // stream (on Node that builds a WHATWG Request and a web stream per POST;
    // the body is then read straight from the socket). Chunked bodies are
    // counted as they stream in, by hono's bodyLimit.
    const length = requestHeader(c, 'content-length');
    if (length !== undefined && requestHeader(c, 'transfer-encoding') === undefined) {
      if (Number.parseInt(length, 10) > maxSize) tooLarge();
      return next();
    }
    return limit(c, next);
  });
};

/**
 * The deepest nesting of arrays and objects a JSON body may have (the top
 * level counts as 1). The deepest body the API takes (a passkey's extension
 * outputs) is 5 levels; anything past this is refused before it is parsed,
 * so no code walking a parsed body (nor the parser itself) meets unbounded depth.
 */
export const MAX_JSON_DEPTH = 32;

/**
 * Whether `text` opens more than `max` arrays or objects at once. One pass
 * over the text, no allocation: brackets inside strings are skipped (a string
 * ends at the next quote not escaped by an odd run of backslashes). Meant for
 * text about to be given to JSON.parse: on text that is not JSON it may say
 * anything, and the parse refuses that text anyway.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      for (;;) {
        const end = text.indexOf('"', i + 1);
        if (end === -1) return false; // unterminated: not JSON
        i = end;
        let slashes = 0;
        while (text.charCodeAt(end - 1 - slashes) === 0x5c /* \ */) slashes++;
        if (slashes % 2 === 0) break;
      }
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}

export const jsonBody = () => createMiddleware((c, next) => (BODY_METHODS.has(c.req.method) ? parseJsonBody(c, next) : next()));

async function parseJsonBody(c: Context, next: Next): Promise<void> {
  {
    const hasBody = requestHasBody(c);
    const type = requestHeader(c, 'content-type');
    if (hasBody || type) {
      const media = (type ?? '').split(';')[0]!.trim();
      if (!JSON_TYPE.test(media)) {
        if (hasBody) problem('unsupported_media_type', 'Send the body as application/json');
      } else if (hasBody) {
        const text = await c.req.text();
        if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
          problem('invalid_json', `The body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`);
        }
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          // A syntax error, or (on a runtime whose parser recurses) a RangeError: either way the client's body.
          problem('invalid_json', 'The body is not valid JSON');
        }
        // Hand the parsed value to hono's validator, which reads the body cache.
        c.req.bodyCache.json = Promise.resolve(parsed);
      }
    }
  }
  await next();
}
