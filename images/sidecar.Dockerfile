# ripplecache-sidecar: multi-stage, small, non-root, read-only root filesystem friendly.
# Build from the repository root: docker build -f images/sidecar.Dockerfile -t ghcr.io/ripplecache/sidecar:dev .
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY common ./common
COPY operator ./operator
COPY sidecar ./sidecar
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --ignore-scripts

FROM gcr.io/distroless/nodejs20-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production \
    PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/common ./dist/common
COPY --from=build /src/dist/sidecar ./dist/sidecar
USER 65532:65532
# 7070: the cache API (127.0.0.1 by default); 7071: /metrics and probes with --metrics-listen.
EXPOSE 7070 7071
ENTRYPOINT ["/nodejs/bin/node", "dist/sidecar/src/main.js"]
