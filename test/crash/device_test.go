package crash

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// checkDevice checks a device volume after op: after delete its device is
// erased (zeros, no filesystem signature); after stage its record carries
// the identity of the filesystem the stage made, as an uninterrupted stage
// records it; where it is mounted, its data is intact.
func (e *env) checkDevice(v *vol, op string) {
	e.t.Helper()
	dev := e.DiskOf(v.id)
	switch op {
	case "delete":
		f, err := os.Open(dev)
		e.Must(err, "open the device")
		defer f.Close()
		buf := make([]byte, 4<<20)
		if _, err := f.ReadAt(buf, 0); err != nil {
			e.t.Errorf("reading %s: %v", dev, err)
		}
		if !bytes.Equal(buf, make([]byte, len(buf))) {
			e.t.Errorf("device %s of the deleted volume is not erased", dev)
		}
		if out, err := exec.Command("blkid", "-p", dev).CombinedOutput(); err == nil {
			e.t.Errorf("device %s of the deleted volume still has a signature: %s", dev, out)
		}
		return
	case "create", "unstage":
		return
	case "stage":
		uuid, err := exec.Command("blkid", "-p", "-s", "UUID", "-o", "value", dev).Output()
		e.Must(err, "blkid")
		for _, r := range e.Records() {
			if r.ID == v.id && r.Identity["fsUUID"] != strings.TrimSpace(string(uuid)) {
				e.t.Errorf("after a crash at stage and its retry, volume %s records identity %v; "+
					"an uninterrupted stage records the filesystem UUID %s too", v.id, r.Identity, uuid)
			}
		}
	}
	if op == "stage" {
		return // its data was never written: its first stage formats it
	}
	dirs := []string{v.staging}
	if op == "publish" {
		dirs = append(dirs, v.target)
	}
	for _, d := range dirs {
		if data, err := os.ReadFile(filepath.Join(d, "f0")); err != nil || string(data) != "mine" {
			e.t.Errorf("volume data at %s: %q, %v", d, data, err)
		}
	}
}
