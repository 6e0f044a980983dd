package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
)

// lostFound is kept (emptied) when a MOUNT disk is wiped: ext4's fsck wants it.
const lostFound = "lost+found"

// ErrNotMounted: a disk given by path is not mounted there.
var ErrNotMounted = errors.New("disk not mounted")

// Wipe removes everything on a MOUNT disk given by path, never following a
// symlink out of it, and only while it is really mounted there
// (ErrNotMounted otherwise). It stops between two entries when ctx ends.
func Wipe(ctx context.Context, dir string) error {
	if !MountRoot(dir) {
		return fmt.Errorf("%w: %s; nothing wiped", ErrNotMounted, dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("wipe %s: %w", dir, err)
	}
	defer root.Close()
	if err := emptyDir(ctx, root, lostFound); err != nil {
		return fmt.Errorf("wipe %s: %w", dir, err)
	}
	return nil
}

// emptyDir removes every entry of root except keep, which is emptied if it
// is a directory, until ctx ends.
func emptyDir(ctx context.Context, root *os.Root, keep string) error {
	entries, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Name() == keep && e.IsDir() {
			sub, err := root.OpenRoot(keep)
			if err != nil {
				return err
			}
			err = emptyDir(ctx, sub, "")
			sub.Close()
			if err != nil {
				return err
			}
			continue
		}
		if err := root.RemoveAll(e.Name()); err != nil {
			return err
		}
		failpoint.Inject(failpoint.WipeStarted)
	}
	return nil
}
