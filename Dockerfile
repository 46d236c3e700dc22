# tandem container image.
#
#   docker build -t tandem --build-arg VERSION=$(git describe --always --dirty) .
#   docker run -v /path/to/tandem.toml:/etc/tandem/tandem.toml:ro \
#              -v tandem-state:/var/lib/tandem -p 127.0.0.1:3306:3306 tandem
#
# The configuration is not part of the image: mount it (read-only) at
# /etc/tandem/tandem.toml, and give passwords through the environment
# (password_env / admin_password_env) or mounted files (password_file).

# build compiles a static binary (no cgo), stamped with VERSION.
FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/tandem ./cmd/tandem \
	&& /out/tandem version \
	&& mkdir -p /out/state

# The runtime image: no shell, no package manager; runs as nonroot
# (uid/gid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="tandem" \
	org.opencontainers.image.description="MySQL-aware active/passive proxy for a master-master pair" \
	org.opencontainers.image.source="https://github.com/tandemdb/tandem" \
	org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/tandem /usr/local/bin/tandem
# The state directory (failover.state_file), owned by the user tandem runs
# as. A named volume mounted here starts as a copy of it, ownership
# included; a bind-mounted host directory must be writable by uid 65532.
COPY --from=build --chown=65532:65532 /out/state /var/lib/tandem
VOLUME ["/var/lib/tandem"]
USER 65532:65532
EXPOSE 3306
# SIGTERM (docker stop) drains: no new sessions, open ones get up to
# proxy.shutdown_timeout (30s) to finish. Give docker stop more than that
# (docker stop -t 35, compose stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tandem"]
CMD ["serve", "-config", "/etc/tandem/tandem.toml"]
