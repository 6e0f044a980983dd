package stagemark

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/layout"
)

func openRecords(t *testing.T, dir, boot string) *Records {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	r, err := OpenRecords(root, boot)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRecords_KeptForTheBootOnly(t *testing.T) {
	dir := t.TempDir()
	a, b := mkdirs(t, dir, "a"), mkdirs(t, dir, "b")
	r := openRecords(t, dir, "boot-1")
	for _, p := range []string{a, b, a} {
		if err := r.Add("vol-1", p); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Add("vol-2", a); err == nil {
		t.Errorf("two volumes recorded staged at one path")
	}
	if err := r.Remove("vol-1", a); err != nil {
		t.Fatal(err)
	}
	if err := r.Add("vol-2", a); err != nil {
		t.Fatal(err)
	}
	// The plugin restarts in the same boot: the records are read back.
	r = openRecords(t, dir, "boot-1")
	if id, ok := r.At(a); !ok || id != "vol-2" {
		t.Errorf("At(a) = %q %v, want vol-2", id, ok)
	}
	if r.Has("vol-1", a) || !r.Has("vol-1", b) || !r.Has("vol-2", a) {
		t.Errorf("after a restart: vol-1 at a %v (want false), at b %v, vol-2 at a %v", r.Has("vol-1", a), r.Has("vol-1", b), r.Has("vol-2", a))
	}
	if err := r.Remove("vol-1", b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, layout.StagingDir, "vol-1")); !os.IsNotExist(err) {
		t.Errorf("the record of a volume staged nowhere is still there: %v", err)
	}
	// A reboot unstages everything, as it unmounts everything.
	r = openRecords(t, dir, "boot-2")
	if r.Has("vol-2", a) {
		t.Errorf("a record of another boot is kept")
	}
	if names, _ := os.ReadDir(filepath.Join(dir, layout.StagingDir)); len(names) != 0 {
		t.Errorf("records of another boot are left: %v", names)
	}
}

func TestRecords_UnreadableAndTempDropped(t *testing.T) {
	dir := t.TempDir()
	sd := filepath.Join(dir, layout.StagingDir)
	if err := os.Mkdir(sd, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"torn": "{\"boot\":\"bo", layout.TempPrefix + "v": `{"boot":"boot-1","paths":["/x"]}`} {
		if err := os.WriteFile(filepath.Join(sd, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := openRecords(t, dir, "boot-1")
	if r.Has("v", "/x") || r.Has(layout.TempPrefix+"v", "/x") {
		t.Errorf("a temp record was taken")
	}
	if names, _ := os.ReadDir(sd); len(names) != 0 {
		t.Errorf("left: %v", names)
	}
}

// A symlink planted at the temp name is never written through.
func TestRecords_PlantedSymlink(t *testing.T) {
	dir := t.TempDir()
	r := openRecords(t, dir, "boot-1")
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../victim", filepath.Join(dir, layout.StagingDir, layout.TempPrefix+"v")); err != nil {
		t.Fatal(err)
	}
	if err := r.Add("v", mkdirs(t, dir, "x")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the symlink was written through: %q", b)
	}
}

func mkdirs(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(p, 0o750); err != nil {
		t.Fatal(err)
	}
	return p
}

// A staging directory the CO removed, even one it made again at the same
// path, no longer stages the volume: its record is dropped where it is
// asked about, also after a restart.
func TestRecords_StagingDirectoryReplaced(t *testing.T) {
	dir := t.TempDir()
	p := mkdirs(t, dir, "co/staging")
	r := openRecords(t, dir, "boot-1")
	if err := r.Add("vol-1", p); err != nil {
		t.Fatal(err)
	}
	if got, ok := r.Staged("vol-1"); !ok || got != p {
		t.Fatalf("Staged: %q %v", got, ok)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	mkdirs(t, dir, "co/staging")
	r = openRecords(t, dir, "boot-1") // the identity is kept in the record
	if id, ok := r.At(p); ok {
		t.Errorf("a made-again staging directory is still volume %s's", id)
	}
	if err := r.Add("vol-2", p); err != nil {
		t.Errorf("stage of another volume at the made-again path: %v", err)
	}
	if _, ok := r.Staged("vol-1"); ok {
		t.Errorf("vol-1 is still staged")
	}
	if got, ok := r.Staged("vol-2"); !ok || got != p {
		t.Errorf("vol-2: Staged %q %v", got, ok)
	}
}

func TestRecords_NotADirectory(t *testing.T) {
	dir := t.TempDir()
	r := openRecords(t, dir, "boot-1")
	if err := r.Add("v", filepath.Join(dir, "missing")); err == nil {
		t.Errorf("a missing staging path was recorded")
	}
}

func TestBootID(t *testing.T) {
	id, err := BootID()
	if err != nil || len(id) < 32 {
		t.Fatalf("BootID: %q %v", id, err)
	}
}
