package crash

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

var (
	allKinds  = []string{"root", "path", "mount", "device"}
	dirKinds  = []string{"root", "path"}
	devKinds  = []string{"device"}
	diskKinds = []string{"mount", "device"}
)

// step is an operation that reaches a crash point: its nth hit, in pools of
// the kinds listed; files is how many files the volume holds beforehand.
type step struct {
	op    string // create, delete, stage, publish, unpublish, unstage, expand
	nth   int
	kinds []string
	files int
}

// reach says which operations reach each crash point, and how often: a ROOT
// or PATH create writes its record twice (creating, ready), a MOUNT create
// once (ready); a delete writes it once (deleting) and drops it once; a
// MOUNT wipe passes wipe.started once per entry removed; a device disk's
// erase records its progress (a second write) and passes wipe.started once
// per GiB zeroed; an expansion of a ROOT or PATH volume writes it once.
var reach = map[string][]step{
	// A create writes one record; a ROOT/PATH delete only drops its record,
	// a MOUNT delete first records `deleting` (a device also its erase
	// progress).
	failpoint.RecordWritten: {
		{op: "create", nth: 1, kinds: allKinds},
		{op: "delete", nth: 1, kinds: diskKinds}, {op: "delete", nth: 2, kinds: devKinds},
		{op: "expand", nth: 1, kinds: dirKinds}},
	failpoint.RecordRenamed: {
		{op: "create", nth: 1, kinds: allKinds},
		{op: "delete", nth: 1, kinds: diskKinds}, {op: "delete", nth: 2, kinds: devKinds},
		{op: "expand", nth: 1, kinds: dirKinds}},
	failpoint.RecordDropped: {{op: "delete", nth: 1, kinds: allKinds}},
	failpoint.CreateMkdir:   {{op: "create", nth: 1, kinds: dirKinds}},
	failpoint.DeleteMarked:  {{op: "delete", nth: 1, kinds: diskKinds}},
	failpoint.DeleteTrashed: {{op: "delete", nth: 1, kinds: dirKinds}},
	failpoint.DeleteRemoved: {{op: "delete", nth: 1, kinds: allKinds}},
	failpoint.WipeStarted: {{op: "delete", nth: 1, kinds: []string{"mount", "device"}, files: 3},
		{op: "delete", nth: 2, kinds: []string{"mount"}, files: 3}},
	failpoint.StageMounted:    {{op: "stage", nth: 1, kinds: allKinds}},
	failpoint.PublishMounted:  {{op: "publish", nth: 1, kinds: allKinds}},
	failpoint.UnpublishUnmntd: {{op: "unpublish", nth: 1, kinds: allKinds}},
	failpoint.UnstageUnmntd:   {{op: "unstage", nth: 1, kinds: allKinds}},
	failpoint.ExpandRecorded:  {{op: "expand", nth: 1, kinds: dirKinds}},
}

// TestCrashPoints crashes the plugin at every crash point, in every kind of
// pool where an operation reaches it, and checks that a restart plus the
// CO's retry of the same call converge.
func TestCrashPoints(t *testing.T) {
	if len(failpoint.Points) == 0 {
		t.Fatal("no crash points")
	}
	for _, p := range failpoint.Points {
		steps, ok := reach[p]
		if !ok {
			t.Errorf("crash point %s is not covered: say in reach which operation reaches it", p)
			continue
		}
		for _, s := range steps {
			point := p
			if s.nth > 1 {
				point = fmt.Sprintf("%s@%d", p, s.nth)
			}
			for _, kind := range s.kinds {
				t.Run(point+"/"+s.op+"/"+kind, func(t *testing.T) { crashAndRetry(t, point, "", s, kind) })
			}
		}
	}
}

// crashAndRetry brings a volume to where s starts, crashes the plugin at
// point during s, restarts it (crashing it once more at recovery during
// start-up, if not empty), retries s and checks that everything converged.
func crashAndRetry(t *testing.T, point, recovery string, s step, kind string) {
	e := newEnv(t, kind, testutil.EnvOptions{})
	base := e.mounts()
	v := &vol{name: "vol", pool: poolOf[kind]}
	if s.op == "create" {
		v.staging, v.target = e.Paths(v.name)
	} else {
		v = e.create(v.name, kind)
		e.writeData(v, kind, s)
	}
	// Bring the volume to where the operation starts.
	for _, op := range map[string][]string{"publish": {"stage"}, "unpublish": {"stage", "publish"},
		"unstage": {"stage", "publish", "unpublish"}}[s.op] {
		e.Must(e.do(op, v), op)
	}
	before := e.mounts()
	want := map[string][]string{"stage": plus(before, v.staging), "publish": plus(before, v.target),
		"unpublish": minus(before, v.target), "unstage": minus(before, v.staging)}[s.op]
	if want == nil || recorded(v) && (s.op == "stage" || s.op == "unstage") {
		want = before // a ROOT or PATH volume is staged without a mount
	}

	e.arm(point)
	if err := e.do(s.op, v); err == nil {
		t.Fatalf("%s succeeded: the plugin did not crash at %s", s.op, point)
	} else if status.Code(err) != codes.Unavailable {
		t.Logf("%s failed, but not because the plugin died: %v", s.op, err)
	}
	e.P.WaitCrash()
	if recovery != "" {
		e.crashStarting(recovery)
	}
	e.restart()
	e.checkCanary()
	if err := e.do(s.op, v); err != nil {
		t.Fatalf("%s retried after a crash at %s: %v", s.op, point, err)
	}
	if err := e.do(s.op, v); err != nil {
		t.Errorf("%s retried once more: %v", s.op, err)
	}
	e.checkMounts("after the retry", want)
	if recorded(v) {
		switch s.op {
		case "stage", "publish", "unpublish":
			e.checkStaged(v, true)
		case "unstage", "delete", "create", "expand":
			e.checkStaged(v, false)
		}
		if s.op == "stage" { // the record outlived the crash: DeleteVolume refuses
			if err := e.do("delete", v); status.Code(err) != codes.FailedPrecondition {
				t.Errorf("delete of a volume staged before a crash: %v, want FailedPrecondition", err)
			}
		}
	}
	vols := e.CheckConverged()
	if (vols[v.id] != nil) != (s.op != "delete") {
		t.Errorf("after %s, volume %s listed: %v", s.op, v.id, vols[v.id] != nil)
	}
	if s.op == "expand" && vols[v.id].GetCapacityBytes() != expanded {
		t.Errorf("after expand, volume %s has %d bytes, want %d", v.id, vols[v.id].GetCapacityBytes(), expanded)
	}
	if kind == "device" {
		e.checkDevice(v, s.op)
	} else {
		e.checkData(v, s.op)
	}
	e.checkCanary()

	// Finish the volume's life; nothing of it may remain.
	life := []string{"stage", "publish", "unpublish", "unstage", "delete"}
	next := map[string]int{"create": 4, "stage": 3, "publish": 2, "unpublish": 3, "unstage": 4, "delete": 5, "expand": 4}[s.op]
	if s.op == "stage" {
		e.Must(e.do("unstage", v), "unstage")
	}
	for _, op := range life[next:] {
		e.Must(e.do(op, v), op)
	}
	e.checkMounts("after the volume's life cycle", base)
	e.CheckConverged()
	e.checkCanary()
}

// expanded is what the expand step grows a 4 MiB volume to.
const expanded = 8 * testutil.MiB

// do runs one operation on v; create fills v.id (and checks a retry gets the
// same ID).
func (e *env) do(op string, v *vol) error {
	switch op {
	case "create":
		size := int64(4 << 20)
		if v.pool == testutil.MountPool || v.pool == testutil.DevicePool {
			size = 0
		}
		cv, err := e.Create(v.name, size, map[string]string{"pool": v.pool})
		if err == nil {
			if v.id != "" && cv.GetVolumeId() != v.id {
				e.t.Errorf("retried CreateVolume %q returned %s, earlier %s", v.name, cv.GetVolumeId(), v.id)
			}
			v.id = cv.GetVolumeId()
		}
		return err
	case "delete":
		return e.Delete(v.id)
	case "stage":
		return e.Stage(v.id, v.staging)
	case "publish":
		return e.Publish(v.id, v.staging, v.target, false)
	case "unpublish":
		return e.Unpublish(v.id, v.target)
	case "unstage":
		return e.Unstage(v.id, v.staging)
	case "expand":
		ctx, cancel := e.Ctx()
		defer cancel()
		r, err := e.P.Controller().ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{
			VolumeId: v.id, CapacityRange: &csi.CapacityRange{RequiredBytes: expanded}})
		if err == nil && r.GetCapacityBytes() != expanded {
			e.t.Errorf("ControllerExpandVolume answered %d bytes, want %d", r.GetCapacityBytes(), expanded)
		}
		return err
	}
	panic("unknown operation " + op)
}

// checkData checks the volume's own data after op: gone after delete, a new
// volume empty, the files written before intact (and visible through the
// staging or target path where it is mounted; a ROOT or PATH volume's
// staging path shows nothing of it: checkStaged).
func (e *env) checkData(v *vol, op string) {
	e.t.Helper()
	switch op {
	case "delete":
		if v.pool != testutil.MountPool {
			if _, err := os.Lstat(e.dataDir(v)); !errors.Is(err, fs.ErrNotExist) {
				e.t.Errorf("deleted volume's directory still there: %v", err)
			}
			return
		}
		ents, _ := os.ReadDir(e.dataDir(v))
		for _, ent := range ents {
			if ent.Name() != "lost+found" {
				e.t.Errorf("left on the wiped disk: %s", ent.Name())
			}
		}
		return
	case "create":
		ents, err := os.ReadDir(e.dataDir(v))
		if err != nil {
			e.t.Errorf("created volume's data directory: %v", err)
		}
		for _, ent := range ents {
			if ent.Name() != "lost+found" {
				e.t.Errorf("new volume holds %s", ent.Name())
			}
		}
		return
	}
	dirs := []string{e.dataDir(v)}
	staging := []string{v.staging}
	if v.pool == testutil.MountPool || recorded(v) { // a whole disk given by path: its staging
		staging = nil // path shows its mark; a ROOT or PATH volume's is an empty directory
	}
	switch op {
	case "stage", "unpublish":
		dirs = append(dirs, staging...)
	case "publish":
		dirs = append(append(dirs, staging...), v.target)
	}
	for _, d := range dirs {
		if data, err := os.ReadFile(filepath.Join(d, "f0")); err != nil || string(data) != "mine" {
			e.t.Errorf("volume data at %s: %q, %v", d, data, err)
		}
	}
}

// writeData writes the files of s into v. A device volume is staged for
// that (which formats it), except before the stage under test, whose
// first stage must be the one that formats.
func (e *env) writeData(v *vol, kind string, s step) {
	e.t.Helper()
	if kind == "device" {
		if s.op == "stage" {
			return
		}
		e.Must(e.do("stage", v), "stage to write")
		defer func() { e.Must(e.do("unstage", v), "unstage after writing") }()
	}
	for i := range max(s.files, 1) {
		e.Must(os.WriteFile(filepath.Join(e.dataDir(v), fmt.Sprintf("f%d", i)), []byte("mine"), 0o600), "write data")
	}
}
