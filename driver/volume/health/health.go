// Package health grades what is wrong with a volume, for the CSI health
// RPCs of the controller and the node: the severity and reason of each
// condition and the message that says it. The Manager (driver/volume) finds
// the facts (the record, the pool, the usage) and asks it how they read.
package health

import (
	"fmt"
	"slices"
)

// Severity is how bad a Condition is, as CSI grades volume health.
type Severity int

const (
	// Degraded: usable, but not as it should be.
	Degraded Severity = iota
	// Inaccessible: it cannot be used now.
	Inaccessible
	// DataLoss: its data is known or strongly suspected to be gone.
	DataLoss
)

// Condition is something known to be wrong with a volume, for the CSI
// health RPCs of the controller and the node.
type Condition struct {
	Severity Severity
	// Reason is a CamelCase word: PoolUnavailable, DirectoryMissing,
	// DiskMissing, DiskReplaced, OverCapacity or ErasePending.
	Reason string
	// Message says it for a person.
	Message string
}

// ErasePending is the condition of a listed pre-existing disk that is being
// wiped or erased: it stays a volume for the CO until that is done.
func ErasePending(id string) Condition {
	return Condition{Severity: Inaccessible, Reason: "ErasePending",
		Message: fmt.Sprintf("disk %s is being wiped or erased; it is listed again once that is done", id)}
}

// OverCapacity is the condition of a volume whose capacity is only
// accounted, that uses more than it.
func OverCapacity(used, capacity int64) Condition {
	return Condition{Severity: Degraded, Reason: "OverCapacity",
		Message: fmt.Sprintf("volume uses %d bytes, more than its capacity of %d (capacity is not enforced on this pool)", used, capacity)}
}

// Unavailable names why a volume cannot be reached (err): its pool is there
// and its data is not (dirMissing), another disk or filesystem is where its
// was (replaced), its disk is missing (disk: a MOUNT volume, whose pool is
// its disk), else its pool is unavailable.
func Unavailable(err error, dirMissing, replaced, disk bool) Condition {
	c := Condition{Severity: Inaccessible, Reason: "PoolUnavailable", Message: err.Error()}
	switch {
	case dirMissing:
		c.Severity, c.Reason = DataLoss, "DirectoryMissing"
	case replaced:
		c.Reason = "DiskReplaced"
	case disk:
		c.Reason = "DiskMissing"
	}
	return c
}

// IDs are the IDs whose health the CO may ask for, in increasing order and
// each once: the listed volumes, and the listed pre-existing disks being
// erased.
func IDs(listed, erasing []string) []string {
	ids := append(slices.Clip(listed), erasing...)
	slices.Sort(ids)
	return slices.Compact(ids)
}
