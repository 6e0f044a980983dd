package seccomp

import "golang.org/x/sys/unix"

// auditArch is the AUDIT_ARCH_* of the system calls of a GOARCH=amd64
// program.
const auditArch = unix.AUDIT_ARCH_X86_64

// x32Bit is __X32_SYSCALL_BIT: on x86-64, the x32 ABI's system calls carry
// AUDIT_ARCH_X86_64 too, with this bit set in their number. The filter
// refuses them all, so that none of the denied calls is reachable that way.
const x32Bit = 0x40000000
