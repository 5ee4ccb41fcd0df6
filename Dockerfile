# syntax=docker/dockerfile:1
#
# POLKU gateway image.
#   docker build -t polku:0.1.0 .
#   docker run --rm -p 50051:50051 -p 9090:9090 polku:0.1.0
#   docker run --rm --read-only --tmpfs /tmp -v "$PWD/polku.config.ts:/etc/polku/polku.config.ts:ro" \
#     -e POLKU_CONFIG=/etc/polku/polku.config.ts -p 50051:50051 polku:0.1.0
#
# Three stages: `build` compiles TypeScript to dist/, `deps` installs the production dependencies
# only, and the runtime stage copies both onto a clean base: no compiler, no dev dependencies, no
# npm cache, no npm.
# Node 22, an LTS line in maintenance until April 2027 (Node 20's support ended in April 2026). The
# code needs Node 20 or later (package.json engines) and its tests run on Node 20 as well.
# Pin the base by digest in your own builds: --build-arg NODE_IMAGE=node:22-bookworm-slim@sha256:...
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run the build before the sources are here; it runs below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only. --ignore-scripts, since `prepare` runs the build (dist/ comes from
# the build stage instead). tsx stays: it is a production dependency that compiles a TypeScript
# pipeline module at run time, with esbuild's prebuilt binary from its optional package.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

FROM ${NODE_IMAGE}
# tini as PID 1: it forwards SIGTERM to node (which then drains the buffer before exiting) and
# reaps zombies; node itself as PID 1 would get no default signal handling from the kernel.
# npm, yarn and corepack go: the gateway needs none of them (less to carry, less to patch).
# A pipeline module mounted anywhere (e.g. /etc/polku/polku.config.ts) imports 'polku': Node looks
# for node_modules/ in each parent directory up to /, so /node_modules/polku resolves it to /app.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn-* \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg \
 && groupadd --system --gid 10001 polku \
 && useradd --system --uid 10001 --gid polku --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin polku \
 && mkdir /node_modules \
 && ln -s /app /node_modules/polku
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY proto ./proto
COPY --from=build /src/dist ./dist

# V8 memory, for a 256 MiB container without discovery (POLKU_DISCOVERY is off unless set). Node
# sizes its old space from the container's memory limit, nearly all of it, which leaves no room for
# payload Buffers, gRPC and native memory: it would be OOM-killed before collecting garbage. So
# --max-old-space-size is about half the limit; for another limit pass NODE_OPTIONS, e.g.
# -m 1g -e NODE_OPTIONS=--max-old-space-size=512. The Helm chart (discovery on, a 320 MiB limit)
# derives it from resources.limits.memory (nodeOptions in values.yaml).
# --max-semi-space-size=2 would save ~30 MiB of RSS but halves throughput (npm run bench): not set.
# TSX_DISABLE_CACHE: a pipeline module is compiled once per start; a disk cache buys nothing in a
# container and would need a writable /tmp.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-old-space-size=128" \
    TSX_DISABLE_CACHE=1 \
    POLKU_GRPC_ADDR=0.0.0.0:50051 \
    POLKU_METRICS_ADDR=0.0.0.0:9090

USER 10001:10001
# gRPC (Gateway, grpc.health.v1, reflection) and HTTP (/metrics, /healthz, /readyz); OTLP/gRPC and
# OTLP/HTTP logs in (POLKU_OTLP_GRPC_ADDR, POLKU_OTLP_HTTP_ADDR); the HTTP front door, POST /v1/events (POLKU_HTTP_ADDR).
EXPOSE 50051 9090 4317 4318 8080
ENTRYPOINT ["tini", "--", "node", "bin/polku.js"]
CMD ["serve"]
