//go:build !amd64 && !arm64

package seccomp

// auditArch is 0 where the filter does not know the architecture: Filter
// and Install then fail (see errArch).
const auditArch = 0

const x32Bit = 0
