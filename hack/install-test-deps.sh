#!/usr/bin/env bash
# install-test-deps.sh installs the system tools that the tests running as
# root need (loop-mounted ext4, xfs and btrfs images, mount, losetup, blkid,
# the user-mode Linux kernel of the quota tests), plus
# make and a C compiler for `go test -race`, so that CI works on a fresh
# Debian or Ubuntu machine.
#
# It only installs what is missing, runs `apt-get update` only when something
# must be installed, and prints nothing when everything is already there.
# Run it as root.
set -euo pipefail

# tool -> Debian package that provides it.
declare -A package_of=(
	[mkfs.ext4]=e2fsprogs
	[tune2fs]=e2fsprogs
	[mkfs.xfs]=xfsprogs
	[xfs_quota]=xfsprogs
	[blkid]=util-linux
	[findmnt]=util-linux
	[wipefs]=util-linux
	[losetup]=mount
	[mount]=mount
	[umount]=mount
	[make]=make
	# The Kubernetes e2e test (test/e2e/kubernetes) runs etcd for its
	# kube-apiserver; hack/build-e2e-tools.sh builds the rest.
	[etcd]=etcd-server
	# Project quota tests: XFS and ext4 quotas run inside user-mode Linux
	# (test/uml), whose ext4 quota modules are loaded with insmod; btrfs
	# qgroups run on the host.
	[linux]=user-mode-linux
	[insmod]=kmod
	[mkfs.btrfs]=btrfs-progs
	# The Kubernetes node e2e test (test/e2e/node) runs a kubelet on
	# containerd with runc and the CNI plugins bridge, host-local and
	# loopback; its workload image is Debian's static busybox.
	[containerd]=containerd
	[ctr]=containerd
	[runc]=runc
	[/usr/lib/cni/bridge]=containernetworking-plugins
	[/usr/lib/cni/host-local]=containernetworking-plugins
	[/usr/lib/cni/loopback]=containernetworking-plugins
	[/bin/busybox]=busybox-static
)

# Tools in /sbin and /usr/sbin are not on every PATH (e.g. sudo -E, su).
PATH="${PATH}:/usr/local/sbin:/usr/sbin:/sbin"

missing=()
for tool in "${!package_of[@]}"; do
	if ! command -v "${tool}" >/dev/null 2>&1; then
		missing+=("${package_of[${tool}]}")
	fi
done
# Debian's dynamic busybox also provides /bin/busybox; the node e2e test
# copies it into an image, so it must be the static one.
if command -v dpkg-query >/dev/null 2>&1 &&
	! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
	missing+=(busybox-static)
fi
# go test -race needs cgo, hence a C compiler.
if ! command -v "${CC:-gcc}" >/dev/null 2>&1; then
	missing+=(gcc libc6-dev)
fi
if ((${#missing[@]} == 0)); then
	exit 0
fi

if ((EUID != 0)); then
	echo "install-test-deps.sh: missing tools, and not root to install them: ${missing[*]}" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-test-deps.sh: no apt-get; install these packages by hand: ${missing[*]}" >&2
	exit 1
fi

# Deduplicate and sort the package names.
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "install-test-deps.sh: installing ${packages[*]}" >&2

# apt-get's output is shown only when it fails.
log="$(mktemp)"
trap 'rm -f "${log}"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! {
	apt-get update -qq &&
		apt-get install -y -qq --no-install-recommends "${packages[@]}"
} >"${log}" 2>&1; then
	cat "${log}" >&2
	echo "install-test-deps.sh: failed to install ${packages[*]}" >&2
	exit 1
fi
