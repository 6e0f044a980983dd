package plugin

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

// TestMountGroup: with a volume_mount_group the volume's root belongs to
// that group, setgid, group-writable (not a recursive chown), so a non-root
// member of the group can write.
func TestMountGroup(t *testing.T) {
	e := newEnv(t)
	id := e.create("grp", mib, nil).GetVolumeId()
	staging, target := e.paths(id)
	e.must(e.stage(id, staging))
	e.write(id, staging, "old", nil)
	c := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
	c.GetMount().VolumeMountGroup = "4242"
	e.must(e.publish(id, staging, target, false, c))
	for _, d := range []string{e.dir, filepath.Dir(filepath.Dir(target)), filepath.Dir(target)} {
		e.must(os.Chmod(d, 0o755)) // let the unprivileged user reach the target
	}
	fi, err := os.Stat(target)
	e.must(err)
	st := fi.Sys().(*syscall.Stat_t)
	if st.Gid != 4242 || fi.Mode()&os.ModeSetgid == 0 || fi.Mode().Perm()&0o070 != 0o070 {
		t.Errorf("volume root: gid %d mode %v", st.Gid, fi.Mode())
	}
	if old, _ := os.Stat(filepath.Join(target, "old")); old.Sys().(*syscall.Stat_t).Gid == 4242 {
		t.Error("existing files were chowned")
	}
	if setpriv, err := exec.LookPath("setpriv"); err == nil {
		cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--groups=4242", "--", "touch", filepath.Join(target, "new"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("a member of the group cannot write: %v %s", err, out)
		}
		if fi, err := os.Stat(filepath.Join(target, "new")); err != nil || fi.Sys().(*syscall.Stat_t).Gid != 4242 {
			t.Errorf("new file does not inherit the group: %v", err)
		}
	}
	c.GetMount().VolumeMountGroup = "wheel"
	_, err = e.p.Node().NodeStageVolume(ctx(t), &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging, VolumeCapability: c})
	wantCode(t, err, codes.InvalidArgument, "non-numeric group")
	e.must(e.unpublish(id, target))
	e.must(e.unstage(id, staging))
	e.must(e.delete(id))
}
