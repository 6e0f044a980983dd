package node

import (
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

func groupCap(mode csi.VolumeCapability_AccessMode_Mode, group string) *csi.VolumeCapability {
	c := mountCap(mode)
	c.GetMount().VolumeMountGroup = group
	return c
}

// VOLUME_MOUNT_GROUP: the volume's root is given to the group, g+rwx and
// setgid, at stage and at a writable publish.
func TestNode_MountGroup(t *testing.T) {
	e := newEnv(t)
	gid := os.Getgid() // one this user may chgrp to, root or not
	c := groupCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, strconv.Itoa(gid))
	if err := os.Chmod(e.vol.Path(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.stage(e.id, e.path("staging"), c); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		fi, err := os.Stat(e.vol.Path())
		if err != nil {
			t.Fatal(err)
		}
		if g := fi.Sys().(*syscall.Stat_t).Gid; int(g) != gid || fi.Mode()&os.ModeSetgid == 0 || fi.Mode().Perm()&0o070 != 0o070 {
			t.Errorf("%s: volume root group %d mode %v, want group %d, g+rwx and setgid", what, g, fi.Mode(), gid)
		}
	}
	check("after stage")
	if err := os.Chmod(e.vol.Path(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.publish(e.id, e.path("staging"), e.path("target"), c, false); err != nil {
		t.Fatal(err)
	}
	check("after publish")
}

func TestNode_MountGroupNotNumeric(t *testing.T) {
	e := newEnv(t)
	bad := groupCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, "wheel")
	wantCode(t, "stage", e.stage(e.id, e.path("staging"), bad), codes.InvalidArgument)
	staging := e.staged(t)
	wantCode(t, "writable publish", e.publish(e.id, staging, e.path("target"), bad, false), codes.InvalidArgument)
	// A read-only publish leaves the group to the writers: the group is not
	// even read.
	if err := e.publish(e.id, staging, e.path("target"), bad, true); err != nil {
		t.Errorf("read-only publish: %v", err)
	}
	wantCode(t, "stage of an unknown volume", e.stage("r-unknown", e.path("s2"), bad), codes.NotFound)
}
