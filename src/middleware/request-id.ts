// X-Request-Id: echo a well-formed incoming id, else mint one.
import { randomUUID } from 'node:crypto';
import { createMiddleware } from 'hono/factory';
import { requestHeader, setResponseHeader } from '../lib/node-fast-path.js';
import type { RequestIdVariables } from './app-env.js';

const VALID = /^[A-Za-z0-9._-]{1,128}$/;

export const requestId = () =>
  createMiddleware<{ Variables: RequestIdVariables }>((c, next) => {
    const incoming = requestHeader(c, 'x-request-id');
    const id = incoming && VALID.test(incoming) ? incoming : randomUUID();
    c.set('requestId', id);
    setResponseHeader(c, 'X-Request-Id', id);
    return next();
  });
