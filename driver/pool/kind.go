package pool

import "fmt"

// Kind is one of the three kinds of disk that Mesos agents know.
type Kind string

// The pool kinds.
const (
	// Root pools hold directories under the node's main data directory.
	Root Kind = "root"
	// Path pools hold directories carved out of an extra disk mounted at a root.
	Path Kind = "path"
	// Mount pools hand out whole disks, one volume per disk.
	Mount Kind = "mount"
)

// Kinds lists the kinds in the order CreateVolume tries them when no pool
// or kind is asked for.
var Kinds = []Kind{Root, Path, Mount}

// ParseKind accepts "root", "path" or "mount".
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case Root, Path, Mount:
		return k, nil
	}
	return "", fmt.Errorf("unknown kind %q: want root, path or mount", s)
}

// Directory reports whether volumes of this kind are directories carved out
// of a shared filesystem (ROOT and PATH) rather than whole disks.
func (k Kind) Directory() bool { return k == Root || k == Path }
