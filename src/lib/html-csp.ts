// The policy of every HTML page the service serves (/docs and the hosted
// pages): files from this origin only, no inline script or style element
// (libraries that set styles through the DOM are not restricted by
// style-src), images also as data: URIs, never framed.
export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');
