package seccomp

import "golang.org/x/sys/unix"

// auditArch is the AUDIT_ARCH_* of the system calls of a GOARCH=arm64
// program.
const auditArch = unix.AUDIT_ARCH_AARCH64

// x32Bit is 0: arm64 has no second ABI under the same AUDIT_ARCH.
const x32Bit = 0
