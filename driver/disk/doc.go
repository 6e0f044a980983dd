// Package disk is localdisk's handling of whole disks, below the volume
// manager: what identifies a block device beyond its /dev name (WWN,
// serial, filesystem UUID, loop backing file), with a per-disk cache of
// it (Identities), its size and the ioctls on it, the erase of a device
// (zero, discard or none, then wipefs; resumable from an offset) and its
// owner of background erases (Eraser), the wipe of a disk given by path,
// and the filesystem type of a mount.
//
// It knows nothing of volumes or their records: what it needs of them it
// gets as values and function values (an erase's progress is recorded by
// a callback), so driver/volume imports it and never the other way round.
package disk
