# One image for both roles: `npm start` (the HTTP API) and `npm run worker` (the BullMQ workers).
# TypeScript runs through tsx, which is a runtime dependency, so there is no build step and
# `npm ci --omit=dev` installs everything the service needs.
FROM node:20-bookworm-slim

ENV NODE_ENV=production
# `npm start` / `npm run worker` exec node (package.json), so the SIGTERM npm forwards from `docker stop`
# reaches the service itself (no shell in between), which finishes its active jobs.
ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

COPY tsconfig.json ./
COPY src ./src
COPY routes ./routes
COPY jobs ./jobs
COPY openapi ./openapi

# The files stay root-owned and read-only to the service; tsx's compile cache goes to /tmp.
USER node

EXPOSE 3000
CMD ["npm", "start"]
