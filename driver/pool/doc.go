// Package pool models localdisk's storage pools: their configuration (the
// native YAML/JSON form), their kinds (ROOT, PATH, MOUNT), the capacity maths
// of volumes and the per-pool capacity accounting.
//
// It knows nothing of gRPC or CSI; errors are the sentinels below, wrapped with
// context, and the CSI adaptors map them to codes in one place.
package pool

import "errors"

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrInvalidConfig: the pools file is malformed or inconsistent.
	ErrInvalidConfig = errors.New("invalid pool configuration")
	// ErrInvalidRange: a capacity range that no plugin could honour
	// (negative values, limit below required).
	ErrInvalidRange = errors.New("invalid capacity range")
	// ErrOutOfRange: a request this pool can never satisfy (larger than the
	// pool or its largest disk, or no whole MiB inside the range).
	ErrOutOfRange = errors.New("capacity out of range")
	// ErrInsufficientCapacity: the pool could satisfy the request when empty,
	// but has not enough free room now.
	ErrInsufficientCapacity = errors.New("insufficient capacity")
)
