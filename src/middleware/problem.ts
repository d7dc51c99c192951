// The one error path: every thrown thing becomes RFC 9457 problem JSON. Known
// problems keep their code; an unreachable database is 503; anything else is
// logged with its request id and answered 500 without its message.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { isDatabaseUnavailable } from '../db/errors.js';
import type { Logger } from '../lib/logger.js';
import { Problem, problemBody } from '../lib/problem.js';

export function toProblem(err: unknown): Problem {
  if (err instanceof Problem) return err;
  if (err instanceof HTTPException) {
    if (err.status === 413) return new Problem('payload_too_large');
    if (err.status === 400) return new Problem('invalid_json', 'The body could not be read');
    if (err.status === 401) return new Problem('invalid_token');
  }
  if (isDatabaseUnavailable(err))
    return new Problem('service_unavailable', 'The database is unavailable', { headers: { 'Retry-After': '5' } });
  return new Problem('internal_error', 'Something went wrong; the request id identifies it in the logs');
}

export function renderProblem(c: Context, p: Problem, requestId: string): Response {
  const headers: Record<string, string> = {
    'Content-Type': 'application/problem+json',
    'X-Request-Id': requestId,
    ...(p.extra.headers ?? {}),
  };
  return c.body(JSON.stringify(problemBody(p, requestId)), p.status as 400, headers);
}

export function problemHandler(logger: Logger) {
  return (err: unknown, c: Context) => {
    const p = toProblem(err);
    const requestId = (c.get('requestId') as string | undefined) ?? 'unknown';
    if (p.status >= 500) {
      // The logger's err serializer reduces database errors to SQLSTATE, constraint and table.
      logger.error(
        { requestId, method: c.req.method, route: c.req.routePath, err },
        p.code === 'service_unavailable' ? 'dependency unavailable' : 'unhandled error',
      );
    }
    return renderProblem(c, p, requestId);
  };
}
