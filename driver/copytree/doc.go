// Package copytree copies a directory tree faithfully and safely: the copy
// engine of the snapshots and clones of directory volumes on filesystems
// without subvolume snapshots. With Reflink (XFS with reflink=1) the data
// of each file is shared with its copy through FICLONE and only metadata is
// written; with Full (ext4 and the others) the data is copied, holes kept.
//
// The source is a volume whose user may have put anything in it, so Copy
// guarantees:
//
//   - no symlink is ever followed: entries are opened relative to their
//     parent's descriptor with O_NOFOLLOW (openat2 RESOLVE_NO_SYMLINKS
//     and RESOLVE_NO_XDEV where the kernel has it) and checked to be the
//     inode stat'ed (without following) before; a symlink is copied as a
//     symlink with the same target text, so a link to /etc or to ../..
//     neither reads nor writes anything outside the tree;
//   - no mount inside the source is crossed: a mount point (another mount
//     ID, or device, or STATX_ATTR_MOUNT_ROOT; bind mounts of the same
//     filesystem too) becomes an empty directory with mode 0755 owned by
//     the owner of its parent directory (an empty 0644 file for a file
//     mount) and is listed in Stats.SkippedMounts;
//   - the copy keeps types (regular files, directories, symlinks, fifos,
//     character and block devices, sockets), owners, modes with the setuid,
//     setgid and sticky bits, access and modification times, extended
//     attributes (user.*, trusted.*, security.*, POSIX ACLs), device
//     numbers and the hard links inside the tree; a target that refuses an
//     xattr the source has fails the copy;
//   - neither the depth nor the width of the tree exhausts descriptors,
//     stack or memory: the walk is iterative and keeps a bounded number of
//     directories open (see Copy), and a directory's names are its only
//     per-directory memory;
//   - a Reflink copy never falls back to copying data (ErrNoReflink); a
//     target out of space or quota fails with ErrNoSpace.
//
// On error the target is left partly filled, for the caller to remove.
// The package uses only the standard library and golang.org/x/sys/unix,
// and needs the privileges of root to copy owners, devices and trusted.*
// xattrs.
package copytree
