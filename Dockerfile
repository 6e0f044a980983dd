# The localdisk plugin image: `make image` (IMAGE=..., VERSION=...).
#
# The plugin is a static Go binary; the runtime image adds only the tools it
# runs: mount/umount, blkid, wipefs and fsck (util-linux, mount), mkfs.ext4
# and fsck.ext4 (e2fsprogs) and mkfs.xfs (xfsprogs), which it needs to
# format and check the block devices of MOUNT pools.

ARG GO_VERSION=1.26.8
ARG DEBIAN_VERSION=trixie

FROM golang:${GO_VERSION}-${DEBIAN_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X github.com/localdisk-csi/localdisk/driver.Version=${VERSION}" \
	-o /out/localdisk ./cmd/localdisk

FROM debian:${DEBIAN_VERSION}-slim
RUN apt-get update \
	&& apt-get install -y --no-install-recommends mount util-linux e2fsprogs xfsprogs \
	&& rm -rf /var/lib/apt/lists/*
COPY --from=build /out/localdisk /usr/local/bin/localdisk
ENTRYPOINT ["/usr/local/bin/localdisk"]
CMD ["serve"]
