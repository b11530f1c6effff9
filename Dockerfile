# syntax=docker/dockerfile:1
#
# One Dockerfile for the five services of the dotdo platform. Each service
# is a target of its own (deploy, auth, db, dispatcher, runtime), built from
# one shared Go build stage, and so is the dotdo CLI (target dotdo, the
# `cli` service of docker-compose.yml); docker-compose.yml builds them all:
#
#   docker compose build           # or: docker build --target deploy -t dotdo/deploy .
#
# The binaries are static (CGO_ENABLED=0: SQLite is modernc.org/sqlite, pure
# Go). Every image runs as the unprivileged user 65532 ("nonroot"), keeps
# its data under /data (DOTDO_DATA_DIR), and has /usr/local/bin/healthcheck
# (ops/healthcheck) for container health checks, since the images have no
# shell. The runtime image adds workerd, the version pinned in package.json,
# taken from its npm package.

ARG GO_VERSION=1.26
ARG NODE_VERSION=22

# --- Go: every binary ------------------------------------------------------
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/ \
      ./cmd/deploy ./cmd/auth ./cmd/db ./cmd/dispatcher ./cmd/runtime \
      ./cmd/dotdo ./ops/healthcheck \
 && mkdir -p /out/data

# --- workerd, from the npm package pinned in package.json -----------------
FROM node:${NODE_VERSION}-bookworm-slim AS workerd
WORKDIR /src
COPY package.json package-lock.json ./
# npm ci checks the lockfile's integrity hashes; only the platform's own
# @cloudflare/workerd-linux-<arch> package is installed.
RUN npm ci --no-audit --no-fund --loglevel=error \
 && cp node_modules/@cloudflare/workerd-linux-*/bin/workerd /workerd \
 && /workerd --version

# --- the service images ----------------------------------------------------
# distroless: CA certificates, tzdata, /etc/passwd with nonroot (65532), no
# shell and no package manager.
FROM gcr.io/distroless/static-debian12:nonroot AS deploy
COPY --from=build /out/deploy /out/healthcheck /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /data
ENV DOTDO_DATA_DIR=/data
USER 65532:65532
EXPOSE 8080 9464
ENTRYPOINT ["/usr/local/bin/deploy"]

FROM gcr.io/distroless/static-debian12:nonroot AS auth
COPY --from=build /out/auth /out/healthcheck /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /data
ENV DOTDO_DATA_DIR=/data
USER 65532:65532
EXPOSE 8081 9464
ENTRYPOINT ["/usr/local/bin/auth"]

FROM gcr.io/distroless/static-debian12:nonroot AS db
COPY --from=build /out/db /out/healthcheck /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /data
ENV DOTDO_DATA_DIR=/data
USER 65532:65532
EXPOSE 8082 9464
ENTRYPOINT ["/usr/local/bin/db"]

FROM gcr.io/distroless/static-debian12:nonroot AS dispatcher
COPY --from=build /out/dispatcher /out/healthcheck /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /data
ENV DOTDO_DATA_DIR=/data
USER 65532:65532
EXPOSE 8787 9464
ENTRYPOINT ["/usr/local/bin/dispatcher"]

# workerd is linked against glibc (2.27 or later) and libstdc++: the "cc"
# distroless image has both.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/runtime /out/healthcheck /usr/local/bin/
COPY --from=workerd /workerd /usr/local/bin/workerd
COPY --from=build --chown=65532:65532 /out/data /data
ENV DOTDO_DATA_DIR=/data \
    DOTDO_WORKERD=/usr/local/bin/workerd
USER 65532:65532
EXPOSE 8790 9464
ENTRYPOINT ["/usr/local/bin/runtime"]

# The dotdo CLI, for `docker compose run --rm cli ...` on the internal
# network (keys bootstrap needs the internal auth service).
FROM gcr.io/distroless/static-debian12:nonroot AS dotdo
COPY --from=build /out/dotdo /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /data
ENV DOTDO_DATA_DIR=/data
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/dotdo"]
