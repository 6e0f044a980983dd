#!/usr/bin/env bash
# build-e2e-tools.sh builds the Kubernetes components that the e2e test in
# test/e2e/kubernetes and test/e2e/node run against the plugin, from the
# pinned tools modules under hack/tools/, fetched through the Go module proxy:
#
#   kube-apiserver, kube-controller-manager,  hack/tools/kubernetes (k8s.io/kubernetes)
#   kube-scheduler, kubelet
#   csi-provisioner                           hack/tools/csi-provisioner (external-provisioner)
#   csi-snapshotter, snapshot-controller      hack/tools/csi-snapshotter (external-snapshotter)
#   crds/*.yaml: the VolumeSnapshot CRDs      the client module of external-snapshotter that
#     (classes, contents, snapshots)          hack/tools/csi-snapshotter requires (config/crd)
#
# The Kubernetes binaries come from one `go build`, so the packages they
# share compile once.
#
# The binaries are cached in a directory named after the versions and a hash
# of the pins and of the Go version, under
# ${LOCALDISK_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/localdisk/tools},
# so only the first run builds (several minutes); later runs print the path at
# once. It prints that directory on standard output and nothing else there;
# progress goes to standard error. etcd comes from Debian instead
# (etcd-server, installed by hack/install-test-deps.sh).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${root}/hack/tools"
GO="${GO:-go}"
export GOWORK=off CGO_ENABLED=0

# version MODULE GOMOD prints the version that GOMOD requires of MODULE.
version() {
	awk -v mod="$1" '
		$1 == "require" && $2 == mod { print $3; exit }
		$1 == mod && $2 ~ /^v/ { print $2; exit }' "$2"
}

kube_version="$(version k8s.io/kubernetes "${tools}/kubernetes/go.mod")"
provisioner_version="$(version github.com/kubernetes-csi/external-provisioner/v6 \
	"${tools}/csi-provisioner/go.mod")"
snapshotter_version="$(version github.com/kubernetes-csi/external-snapshotter/v8 \
	"${tools}/csi-snapshotter/go.mod")"
snapshot_client_version="$(version github.com/kubernetes-csi/external-snapshotter/client/v8 \
	"${tools}/csi-snapshotter/go.mod")"
if [[ -z "${kube_version}" || -z "${provisioner_version}" || -z "${snapshotter_version}" ||
	-z "${snapshot_client_version}" ]]; then
	echo "build-e2e-tools.sh: cannot read the pinned versions in ${tools}" >&2
	exit 1
fi

hash="$(cat "${tools}"/*/go.mod "${tools}"/*/go.sum "${BASH_SOURCE[0]}" <("${GO}" version) |
	sha256sum | cut -c1-12)"
base="${LOCALDISK_TOOLS_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/localdisk/tools}"
out="${base}/kubernetes-${kube_version}_csi-provisioner-${provisioner_version}_csi-snapshotter-${snapshotter_version}_${hash}"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubelet csi-provisioner
	csi-snapshotter snapshot-controller)
crds=(volumesnapshotclasses volumesnapshotcontents volumesnapshots)

complete() {
	local bin crd
	for bin in "${binaries[@]}"; do
		[[ -x "${out}/${bin}" ]] || return 1
	done
	for crd in "${crds[@]}"; do
		[[ -s "${out}/crds/snapshot.storage.k8s.io_${crd}.yaml" ]] || return 1
	done
}

if complete; then
	echo "${out}"
	exit 0
fi

mkdir -p "${base}"
# One build at a time: a second caller waits, then finds the result.
exec 9>"${base}/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi
if complete; then
	echo "${out}"
	exit 0
fi

tmp="$(mktemp -d "${base}/.build.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT

start=${SECONDS}
echo "build-e2e-tools.sh: building kube-apiserver, kube-controller-manager, kube-scheduler and kubelet ${kube_version}," \
	"csi-provisioner ${provisioner_version}, and csi-snapshotter and snapshot-controller ${snapshotter_version}" \
	"into ${out} (takes minutes the first time)" >&2

kube_pkg=k8s.io/component-base/version
kube_minor="${kube_version#v1.}"
kube_minor="${kube_minor%%.*}"
(
	cd "${tools}/kubernetes"
	"${GO}" build -trimpath -o "${tmp}/" -ldflags "-s -w \
		-X ${kube_pkg}.gitVersion=${kube_version} -X ${kube_pkg}.gitMajor=1 \
		-X ${kube_pkg}.gitMinor=${kube_minor} -X ${kube_pkg}.gitTreeState=clean" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet
)
(
	cd "${tools}/csi-provisioner"
	"${GO}" build -trimpath -o "${tmp}/csi-provisioner" \
		-ldflags "-s -w -X main.version=${provisioner_version}" \
		github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner
)
snapshot_start=${SECONDS}
(
	cd "${tools}/csi-snapshotter"
	"${GO}" build -trimpath -o "${tmp}/" -ldflags "-s -w -X main.version=${snapshotter_version}" \
		github.com/kubernetes-csi/external-snapshotter/v8/cmd/csi-snapshotter \
		github.com/kubernetes-csi/external-snapshotter/v8/cmd/snapshot-controller
	# The CRDs of the release: its client module's config/crd (downloaded by
	# the build, which imports the module).
	client_dir="$("${GO}" list -m -f '{{.Dir}}' github.com/kubernetes-csi/external-snapshotter/client/v8)"
	if [[ -z "${client_dir}" || ! -d "${client_dir}/config/crd" ]]; then
		echo "build-e2e-tools.sh: no config/crd in external-snapshotter/client/v8 ${snapshot_client_version} (${client_dir})" >&2
		exit 1
	fi
	mkdir -p "${tmp}/crds"
	for crd in "${crds[@]}"; do
		cp "${client_dir}/config/crd/snapshot.storage.k8s.io_${crd}.yaml" "${tmp}/crds/"
	done
	chmod 0644 "${tmp}"/crds/*.yaml
)
echo "build-e2e-tools.sh: csi-snapshotter and snapshot-controller built in $((SECONDS - snapshot_start)) s" >&2

# A half-built directory never carries the final name.
rm -rf "${out}"
mv "${tmp}" "${out}"
trap - EXIT
# Builds for other pins are stale: drop them (a process still running one
# keeps its open file).
for old in "${base}"/kubernetes-*_csi-provisioner-*; do
	if [[ "${old}" != "${out}" ]]; then
		rm -rf "${old}"
	fi
done
echo "build-e2e-tools.sh: built in $((SECONDS - start)) s" >&2
echo "${out}"
