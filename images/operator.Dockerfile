# ripplecache-operator: multi-stage, small, non-root, read-only root filesystem friendly.
# Build from the repository root: docker build -f images/operator.Dockerfile -t ghcr.io/ripplecache/operator:dev .
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY common ./common
COPY operator ./operator
COPY sidecar ./sidecar
COPY scripts/bundle-operator.ts ./scripts/
RUN npx tsc -p tsconfig.build.json && npx tsx scripts/bundle-operator.ts && npm prune --omit=dev --ignore-scripts

FROM gcr.io/distroless/nodejs20-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production \
    PATH=/nodejs/bin:/usr/local/bin:/usr/bin:/bin
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/common ./dist/common
COPY --from=build /src/dist/operator ./dist/operator
USER 65532:65532
EXPOSE 8080 9443
# --max-semi-space-size=1: a 1 MiB young generation. At 1,000 CacheClusters it kept peak RSS at 150-163 MiB
# (194-234 without) and idle RSS ~14 MiB lower, for about 1 s more CPU (README "Fifth round").
# dist/operator/bundle/main.mjs: the operator as one minified module (scripts/bundle-operator.ts), which
# cuts idle RSS further (README "Sixth round"); node_modules stays for the packages it loads lazily (yaml).
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=1", "dist/operator/bundle/main.mjs"]
