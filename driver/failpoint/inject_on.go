//go:build failpoints

package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Enabled reports whether failpoints are compiled in.
const Enabled = true

var (
	mu     sync.Mutex
	name   string
	nth    = 1
	hits   int
	parsed bool
)

// Inject kills the process if $LOCALDISK_FAILPOINT arms this point and this
// is its armed hit.
func Inject(point string) {
	mu.Lock()
	defer mu.Unlock()
	if !parsed {
		parsed = true
		name = os.Getenv(Env)
		if n, count, ok := strings.Cut(name, "@"); ok {
			name = n
			if v, err := strconv.Atoi(count); err == nil && v > 0 {
				nth = v
			}
		}
	}
	if point != name {
		return
	}
	if hits++; hits == nth {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never return while the signal is delivered
	}
}
