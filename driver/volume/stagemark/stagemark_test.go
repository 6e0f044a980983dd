package stagemark

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOpenRemove(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	s := Marks{Dir: dir, Root: root}
	f, err := s.Open("disk-a")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, err := os.Lstat(s.Path("disk-a")); err != nil || !fi.IsDir() {
		t.Fatalf("mark %s: %v", s.Path("disk-a"), err)
	}
	if err := s.Remove("disk-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("disk-a"); err != nil {
		t.Fatalf("removing a missing mark: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, stagedDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", s.Path("disk-b")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open("disk-b"); err == nil {
		t.Fatal("a symlinked mark was opened")
	}
}

func TestProtected(t *testing.T) {
	s := Marks{Dir: "/state"}
	kept := []Kept{{Pool: "a", Dirs: []string{"/disks/a"}}, {Pool: "r", Root: "/root", Dirs: []string{"/root/localdisk"}}}
	for path, want := range map[string]bool{
		"/state": true, "/state/x": true, "/statex": false,
		"/disks/a/t": true, "/root": true, "/root/localdisk/v": true, "/root/csi/t": false,
	} {
		if err := s.Protected(path, kept); (err != nil) != want {
			t.Errorf("Protected(%s) = %v, want refused %v", path, err, want)
		}
	}
}
