#!/usr/bin/env bash
# build-helm.sh builds the helm that the chart test (deploy/helm) lints and
# renders deploy/helm/localdisk with, from the pinned tools module
# hack/tools/helm (helm.sh/helm/v3), fetched through the Go module proxy.
#
# The binary is cached in a directory named after the version and a hash of
# the pins and of the Go version, under
# ${LOCALDISK_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/localdisk/tools},
# so only the first run builds (a minute or more); later runs print the path
# at once. It prints the path of the helm binary on standard output and
# nothing else there; progress goes to standard error.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mod="${root}/hack/tools/helm"
GO="${GO:-go}"
export GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=mod

helm_version="$(awk '$1 == "helm.sh/helm/v3" && $2 ~ /^v/ { print $2; exit }' "${mod}/go.mod")"
if [[ -z "${helm_version}" ]]; then
	echo "build-helm.sh: cannot read the pinned helm version in ${mod}/go.mod" >&2
	exit 1
fi

hash="$(cat "${mod}/go.mod" "${mod}/go.sum" "${BASH_SOURCE[0]}" <("${GO}" version) |
	sha256sum | cut -c1-12)"
base="${LOCALDISK_TOOLS_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/localdisk/tools}"
out="${base}/helm-${helm_version}_${hash}"

if [[ -x "${out}/helm" ]]; then
	echo "${out}/helm"
	exit 0
fi

mkdir -p "${base}"
# One build at a time: a second caller waits, then finds the result.
exec 9>"${base}/.helm.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi
if [[ -x "${out}/helm" ]]; then
	echo "${out}/helm"
	exit 0
fi

tmp="$(mktemp -d "${base}/.build-helm.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
start=${SECONDS}
echo "build-helm.sh: building helm ${helm_version} into ${out} (takes a minute or more the first time)" >&2
(
	cd "${mod}"
	"${GO}" build -trimpath -o "${tmp}/helm" -ldflags "-s -w \
		-X helm.sh/helm/v3/internal/version.version=${helm_version}" helm.sh/helm/v3/cmd/helm
)
# A half-built directory never carries the final name.
rm -rf "${out}"
mv "${tmp}" "${out}"
trap - EXIT
# Builds for other pins are stale: drop them.
for old in "${base}"/helm-*; do
	if [[ "${old}" != "${out}" ]]; then
		rm -rf "${old}"
	fi
done
echo "build-helm.sh: built in $((SECONDS - start)) s" >&2
echo "${out}/helm"
