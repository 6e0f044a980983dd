package fakemounter

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/mounter"
)

func TestMounter_BindsAndUnmounts(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src, a, b := filepath.Join(dir, "src"), filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{src, a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := New()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !m.NotMounted(a) || m.MountOf(a, src) || m.SameFile(a, src) {
		t.Fatalf("%s shows something before any bind", a)
	}
	if err := m.BindDir(f, a, false); err != nil {
		t.Fatal(err)
	}
	if err := m.BindPath(a, b, true); err != nil { // a clone of the mount at a
		t.Fatal(err)
	}
	want := mounter.Source{Major: RootSource.Major, Minor: RootSource.Minor, Root: src}
	tb, _ := m.ReadTable()
	if e := tb.At(b); e == nil || mounter.SourceOf(e) != want || !mounter.ReadOnly(e) {
		t.Errorf("at %s: %+v, want a read-only mount of %v", b, e, want)
	}
	if m.NotMounted(a) || !m.MountOf(a, src) || !m.SameFile(b, src) {
		t.Errorf("the fast paths do not see the binds")
	}
	m.Unsure(true)
	if m.NotMounted(filepath.Join(dir, "none")) || m.MountOf(a, src) || m.SameFile(b, src) {
		t.Errorf("an unsure fake answered")
	}
	if err := m.UnmountAll(b); err != nil || len(m.Unmounts()) != 1 || len(m.Binds()) != 2 {
		t.Errorf("unmount: %v; binds %+v, unmounts %q", err, m.Binds(), m.Unmounts())
	}
	if err := m.BindPath(src, filepath.Join(dir, "missing"), false); err == nil {
		t.Errorf("a bind onto a missing target succeeded")
	}
	link := filepath.Join(dir, "link")
	os.Symlink(b, link)
	if err := m.BindPath(src, link, false); err == nil {
		t.Errorf("a bind onto a symlink succeeded")
	}
}
