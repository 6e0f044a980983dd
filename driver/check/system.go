package check

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/disk"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/quota"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// system reports the kernel and the interfaces this process will use where
// the kernel offers a choice: the very probes serve decides by.
func (r *run) system() {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		r.warn("kernel", "uname: %v", err)
	} else {
		r.ok("kernel", "%s %s (%s)", unix.ByteSliceToString(u.Sysname[:]), unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:]))
	}
	if !hasCapSysAdmin() {
		r.fail("mount", "this process lacks CAP_SYS_ADMIN: it can make no mount (run it as root, or give it CAP_SYS_ADMIN)")
		return
	}
	m, why := mounter.Detect()
	if why != nil {
		r.ok("mount", "binds use %s: the new mount API cannot be used here (%v); same guarantees", m, why)
	} else {
		r.ok("mount", "binds use %s", m)
	}
	r.ok("quota", "project quotas use %s", quota.Interface())
}

// probePrefix names the temporary files and directories of the probes.
const probePrefix = ".localdisk-check-"

// stateDir reports whether serve can open and write the state dir (and
// make it, when it does not exist yet), and whether every record is
// readable. The writability probe is a temporary file in the state dir
// itself, never in volumes/, where a start-up running meanwhile would take
// it for a bad record.
func (r *run) stateDir() {
	dir := r.cfg.StateDir
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		parent := existingParent(dir)
		if err := probeWrite(parent); err != nil {
			r.fail("state-dir", "%s does not exist and cannot be made: %v", dir, err)
			return
		}
		r.ok("state-dir", "%s does not exist yet: serve makes it (%s is writable)", dir, parent)
		return
	case err != nil:
		r.fail("state-dir", "%v", err)
		return
	case !fi.IsDir():
		r.fail("state-dir", "%s is not a directory", dir)
		return
	}
	if err := probeWrite(dir); err != nil {
		r.fail("state-dir", "%s is not writable: %v", dir, err)
		return
	}
	if vols := layout.StateRecordsDir(dir); disk.ReadOnlyFS(vols) {
		r.fail("state-dir", "%s is on a read-only mount: no volume record can be written", vols)
		return
	}
	r.ok("state-dir", "%s is writable", dir)
	if !r.cfg.Records {
		return
	}
	recs, bad, err := state.ReadAll(dir)
	switch {
	case err != nil:
		r.fail("state-dir", "reading the volume records: %v", err)
	case len(bad) > 0:
		r.fail("state-dir", "%d of %d volume records cannot be read: serve refuses to start: %v", len(bad), len(bad)+len(recs), bad[0])
	default:
		r.ok("state-dir", "%d volume records, all readable", len(recs))
	}
}

// probeWrite creates a temporary file in dir and removes it.
func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, probePrefix+"*")
	if err != nil {
		return err
	}
	name := f.Name()
	_, err = f.Write([]byte("localdisk check\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// existingParent is dir or its nearest ancestor that exists.
func existingParent(dir string) string {
	for {
		if _, err := os.Lstat(dir); err == nil || dir == "/" || dir == "." {
			return dir
		}
		dir = filepath.Dir(dir)
	}
}

// capSysAdmin is CAP_SYS_ADMIN's bit in /proc/self/status's CapEff.
const capSysAdmin = 21

// hasCapSysAdmin reports whether this process's effective capabilities
// hold CAP_SYS_ADMIN, which every bind and unmount needs (true when the
// status file cannot be read: then the probes speak for themselves).
func hasCapSysAdmin() bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err != nil || caps&(1<<capSysAdmin) != 0
		}
	}
	return true
}
