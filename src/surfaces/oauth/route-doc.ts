// One declaration for every route of the OAuth surface: its OpenAPI operation
// (no API security, no permission: the RFCs define who may call it) and the
// audit action the access log records it under.
import { describeRoute } from 'hono-openapi';
import { ROUTE_META, type RouteMeta } from '../../middleware/route-meta.js';

type OpenApiResponses = Record<string, { description: string; content?: unknown }>;

export function oauthRoute(d: {
  action: string;
  summary: string;
  description: string;
  responses: OpenApiResponses;
  parameters?: unknown[];
  /** Response schemas the route declaration checks (a public JSON document's). */
  schemas?: RouteMeta['responses'];
}) {
  const meta: RouteMeta = { action: d.action, summary: d.summary, tags: ['auth'], responses: d.schemas ?? {} };
  const mw = describeRoute({
    operationId: d.action,
    summary: d.summary,
    description: d.description,
    tags: meta.tags,
    security: [],
    'x-permission': [],
    'x-audit-action': d.action,
    ...(d.parameters ? { parameters: d.parameters } : {}),
    responses: d.responses,
  } as Parameters<typeof describeRoute>[0]);
  return Object.assign(mw, { [ROUTE_META]: meta });
}

/** Responses given as status → words (an HTML page or a redirect: no body schema). */
export const described = (responses: Record<string, string>): OpenApiResponses =>
  Object.fromEntries(Object.entries(responses).map(([status, description]) => [status, { description }]));
