# One image for both roles: the HTTP API (`node dist/src/server.js`) and the BullMQ workers
# (`node dist/src/worker.js`), both compiled JavaScript on plain node: no TypeScript loader in
# production (`npm start` / `npm run worker` run the same entries through tsx in development).
#
# Node 24 (active LTS, supported until April 2028): Node 20, which the development machines run,
# reached end of life in April 2026. package.json `engines` (^20.19.0 || >=22.12.0) holds for both
# (test/architecture/node-engines.test.ts).

# --- build: all dependencies, `tsc`, then only the production dependencies are kept ---
FROM node:24-bookworm-slim AS build
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false

COPY package.json package-lock.json ./
RUN npm ci

COPY tsconfig.json tsconfig.build.json ./
COPY scripts/copy-build-assets.ts ./scripts/
COPY src ./src
COPY routes ./routes
COPY jobs ./jobs
COPY openapi ./openapi
# tsc → dist/, plus the files read at run time (the SSFS definition and icons, the default field mapping).
RUN npm run build && npm prune --omit=dev && npm cache clean --force

# --- runtime: the compiled service and its production dependencies, run as the unprivileged `node` user ---
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app

# Root-owned and read-only to the service, which writes nothing to its own directory.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist

USER node
EXPOSE 3000
# node itself is PID 1's child (compose `init: true` or `docker run --init`): the SIGTERM of
# `docker stop` reaches the service, which finishes its in-flight requests and active jobs.
CMD ["node", "dist/src/server.js"]
