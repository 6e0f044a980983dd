//go:build !failpoints

package failpoint

// Inject does nothing in a normal build.
func Inject(string) {}

// Enabled reports whether failpoints are compiled in.
const Enabled = false
