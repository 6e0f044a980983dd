// Package quota makes the capacity of a directory volume a real limit: XFS
// and ext4 project quotas set through quotactl(2), and btrfs subvolumes with
// qgroup limits set through the btrfs ioctls. Everything is a system call
// from golang.org/x/sys/unix; no tool is ever executed. The package knows
// nothing of gRPC: it returns the sentinel errors of errors.go, wrapped with
// context.
//
// # XFS and ext4
//
// A volume directory gets its own project ID with the inherit flag
// (SetProject), so every file made below it is charged to that project, and
// the project gets a hard block limit (and optionally an inode limit) equal
// to the volume's capacity (FS.SetLimit). A write past the limit then fails:
// with EDQUOT on ext4, with ENOSPC on XFS (which reports a project quota as
// a full disk). FS.Usage reads the project's own bytes and inodes.
//
// On ext4 (as on every filesystem using the kernel's generic quota code) a
// process with CAP_SYS_RESOURCE, such as a privileged container, is let past
// hard limits; XFS and btrfs enforce them for everyone.
//
// XFS frees the blocks of removed files in the background (deferred inode
// inactivation), so a project's usage drops a moment after its files are
// removed, not at once.
//
// The filesystem must be mounted with project quota enforced: XFS with
// -o prjquota (or pquota), ext4 made with `mkfs.ext4 -O quota,project` (and
// inodes of at least 256 bytes) and mounted with -o prjquota. FS.State
// reports what the mount offers; FS.Supported turns it into ErrNotSupported.
//
// Quota calls go through quotactl_fd(2) (Linux 5.14 and later) on an open
// directory of the filesystem, so no block device path is needed. On older
// kernels the package falls back to quotactl(2) with the device named in
// /proc/self/mountinfo for the directory's filesystem.
//
// Project IDs come from an Allocator, one per filesystem, which never hands
// out an ID twice, never ID 0, and never an ID that the filesystem already
// charges or limits (another tool's project).
//
// # btrfs
//
// A volume is a subvolume (CreateSubvolume, DeleteSubvolume) whose level-0
// qgroup has a referenced-bytes limit equal to the volume's capacity
// (SetQgroupLimit). Quotas must be enabled on the filesystem (EnableQuota).
// QgroupUsage reads a subvolume's referenced bytes and limit.
package quota
