# crossmap's image, for those who build with a container runtime:
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg COMMIT=$(git rev-parse HEAD) -t registry.example.com/crossmap:v0.1.0 .
#
# `make image` builds the same image (the same static binary, user, CA
# certificates, entrypoint and labels) without a container daemon; see
# README.md, Installing.

# Build: a static binary (no cgo), so that the final image needs no libc.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=linux GOARCH=${TARGETARCH} go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/crossmap ./cmd/crossmap

# Run: distroless static holds CA certificates, /etc/passwd with the user
# nonroot (65532) and nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="crossmap" \
      org.opencontainers.image.description="Multi-cluster edge routing for Kubernetes with Emissary-ingress" \
      org.opencontainers.image.source="https://github.com/crossmap/crossmap" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=build /out/crossmap /usr/local/bin/crossmap
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/crossmap"]
CMD ["controller"]
