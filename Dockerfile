# syntax=docker/dockerfile:1
# The auth service as compiled JavaScript: `node dist/server.js`, no tsx or
# TypeScript at run time, production dependencies only, running as the
# unprivileged `node` user. No key, certificate or .env is copied in (see
# .dockerignore): they arrive at run time as environment or mounted files.
# The current Node LTS; the project also runs on 20.19+ (development, CI).
ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-bookworm-slim AS base
WORKDIR /app

# Compile src/ to dist/ with the full (dev) dependency set.
FROM base AS build
COPY package.json package-lock.json ./
# No install scripts: nothing here needs one (native addons ship prebuilt).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies only, resolved from the same lock file.
FROM base AS deps
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM base AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/app/data
# Code stays owned by root, so the service cannot rewrite itself; only DATA_DIR
# (embedded mode's PGlite files and dev keys) is writable by the service user.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY drizzle ./drizzle
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node is PID 1 and handles SIGTERM itself (drains requests, flushes the audit log).
# The heap limit keeps V8 collecting instead of growing: the live heap under
# load is 35-60 MB, but with the default limit V8 let the old space grow to
# 100 MB and the process to ~230 MB RSS; with 160 MB it stays near 130 MB at
# the same throughput (npm run bench, scenario 4, which runs this command line).
CMD ["node", "--enable-source-maps", "--max-old-space-size=160", "dist/server.js"]
