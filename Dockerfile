# The localdisk plugin image: `make image` (IMAGE=..., VERSION=...), or for
# linux/amd64 and linux/arm64 at once `make release` (docker buildx).
#
# The plugin is a static Go binary (CGO_ENABLED=0), cross-compiled on the
# build platform for the target one (TARGETOS/TARGETARCH, set by BuildKit);
# the runtime image adds only the tools it runs: mount/umount, blkid, wipefs
# and fsck (util-linux, mount), mkfs.ext4 and fsck.ext4 (e2fsprogs) and
# mkfs.xfs (xfsprogs), which it needs to format and check the block devices
# of MOUNT pools.

ARG GO_VERSION=1.26.8
ARG DEBIAN_VERSION=trixie

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-${DEBIAN_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS TARGETARCH
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
	-ldflags "-s -w -X github.com/localdisk-csi/localdisk/driver.Version=${VERSION}" \
	-o /out/localdisk ./cmd/localdisk

FROM debian:${DEBIAN_VERSION}-slim
RUN apt-get update \
	&& apt-get install -y --no-install-recommends mount util-linux e2fsprogs xfsprogs \
	&& rm -rf /var/lib/apt/lists/*
COPY --from=build /out/localdisk /usr/local/bin/localdisk
COPY LICENSE /usr/share/doc/localdisk/LICENSE
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="localdisk" \
	org.opencontainers.image.description="A CSI plugin that serves a node's local disks as volumes (ROOT/PATH directories, MOUNT whole disks) for Kubernetes and Mesos" \
	org.opencontainers.image.source="https://github.com/localdisk-csi/localdisk" \
	org.opencontainers.image.url="https://github.com/localdisk-csi/localdisk" \
	org.opencontainers.image.version="${VERSION}" \
	org.opencontainers.image.revision="${REVISION}" \
	org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/usr/local/bin/localdisk"]
CMD ["serve"]
