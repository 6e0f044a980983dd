package volume

import (
	"fmt"
)

// errClosing is what an erase asked for after Close gets.
var errClosing = fmt.Errorf("%w: the plugin is stopping; the erase resumes at its next start", ErrBusy)

// EraseBacklog is the number of disks whose erase is not complete
// (driver/volume/erasure).
func (m *Manager) EraseBacklog() int { return m.erasing.Backlog() }

// ResumeErases restarts the erase (or wipe) of every MOUNT volume left
// `deleting` whose erase is not running, in a healthy pool: one that failed
// after DeleteVolume answered (the erase went on in the background) is
// retried here, since the CO that got OK never asks again. A running erase
// is joined, not doubled.
func (m *Manager) ResumeErases() { m.erasing.Resume(m.pools) }
