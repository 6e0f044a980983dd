package quota

import (
	"errors"
	"os"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's sizes of the structures passed to quotactl and the ioctls,
// and the request numbers as <linux/fs.h> and <linux/btrfs.h> spell them.
func TestABI(t *testing.T) {
	for name, c := range map[string]struct{ got, want uintptr }{
		"if_dqblk":                     {unsafe.Sizeof(ifDqblk{}), 72},
		"if_nextdqblk":                 {unsafe.Sizeof(ifNextDqblk{}), 72},
		"if_dqinfo":                    {unsafe.Sizeof(ifDqinfo{}), 24},
		"fs_quota_statv":               {unsafe.Sizeof(fsQuotaStatV{}), 160},
		"fs_quota_stat":                {unsafe.Sizeof(fsQuotaStat{}), 80},
		"fs_disk_quota":                {unsafe.Sizeof(fsDiskQuota{}), 112},
		"QCMD(Q_XGETQUOTA, PRJQUOTA)":  {uintptr(qcmd(qXGetQuota, prjQuota)), 0x00580302},
		"QCMD(Q_XSETQLIM, PRJQUOTA)":   {uintptr(qcmd(qXSetQLim, prjQuota)), 0x00580402},
		"fsxattr":                      {unsafe.Sizeof(fsxattr{}), 28},
		"btrfs_ioctl_vol_args":         {unsafe.Sizeof(btrfsVolArgs{}), 4096},
		"btrfs_ioctl_search_args":      {unsafe.Sizeof(btrfsSearchArgs{}), 4096},
		"btrfs_ioctl_search_key":       {unsafe.Sizeof(btrfsSearchKey{}), 104},
		"btrfs_ioctl_search_header":    {unsafe.Sizeof(btrfsSearchHeader{}), 32},
		"btrfs_ioctl_ino_lookup":       {unsafe.Sizeof(btrfsInoLookupArgs{}), 4096},
		"btrfs_ioctl_qgroup_limit":     {unsafe.Sizeof(btrfsQgroupLimitArgs{}), 48},
		"FS_IOC_FSGETXATTR":            {fsIocFSGetXattr, 0x801c581f},
		"FS_IOC_FSSETXATTR":            {fsIocFSSetXattr, 0x401c5820},
		"BTRFS_IOC_SYNC":               {btrfsIocSync, 0x9408},
		"BTRFS_IOC_SUBVOL_CREATE":      {btrfsIocSubvolCreate, 0x5000940e},
		"BTRFS_IOC_SNAP_DESTROY":       {btrfsIocSnapDestroy, 0x5000940f},
		"BTRFS_IOC_TREE_SEARCH":        {btrfsIocTreeSearch, 0xd0009411},
		"BTRFS_IOC_INO_LOOKUP":         {btrfsIocInoLookup, 0xd0009412},
		"BTRFS_IOC_QUOTA_CTL":          {btrfsIocQuotaCtl, 0xc0109428},
		"BTRFS_IOC_QGROUP_CREATE":      {btrfsIocQgroupCreate, 0x4010942a},
		"BTRFS_IOC_QGROUP_LIMIT":       {btrfsIocQgroupLimit, 0x8030942b},
		"BTRFS_IOC_QUOTA_RESCAN_WAIT":  {btrfsIocQuotaRescanWait, 0x942e},
		"QCMD(Q_GETQUOTA, PRJQUOTA)":   {uintptr(qcmd(qGetQuota, prjQuota)), 0x80000702},
		"QCMD(Q_XGETQSTATV, PRJQUOTA)": {uintptr(qcmd(qXGetQStatV, prjQuota)), 0x00580802},
	} {
		if c.got != c.want {
			t.Errorf("%s: %#x, want %#x", name, c.got, c.want)
		}
	}
}

// TestHostFilesystemsHaveNoProjectQuota: the test's own directory (on the
// host's root filesystem, mounted without prjquota) and tmpfs report no
// enforced project quota, and the quota calls on them fail with
// ErrNotSupported, never another error.
func TestHostFilesystemsHaveNoProjectQuota(t *testing.T) {
	for _, dir := range []string{t.TempDir(), "/dev/shm"} {
		fs, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer fs.Close()
		st, err := fs.State()
		t.Logf("%s: %s, state %+v, %v", dir, fs.Kind(), st, err)
		if err != nil || st.Enforced {
			continue // a host with project quota on / is fine, just not this test's case
		}
		if err := fs.Supported(); !errors.Is(err, ErrNotSupported) {
			t.Errorf("Supported() on %s = %v, want ErrNotSupported", dir, err)
		}
		if fs.Kind() == KindOther {
			if err := fs.SetLimit(DefaultFirstID, Limits{Bytes: 1 << 20}); !errors.Is(err, ErrNotSupported) {
				t.Errorf("SetLimit on %s = %v, want ErrNotSupported", dir, err)
			}
		}
	}
}

func TestOpen(t *testing.T) {
	if _, err := Open("/nonexistent/dir"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(missing) = %v, want ErrNotFound", err)
	}
	f, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fs, err := NewFS(f)
	f.Close() // the FS keeps its own descriptor
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if _, err := fs.State(); err != nil {
		t.Errorf("State() after the caller closed its file: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(fs.Path(), &st); err != nil || st.Dev != fs.Dev() {
		t.Errorf("Dev() = %d, stat says %d (%v)", fs.Dev(), st.Dev, err)
	}
	if err := fs.SetLimit(0, Limits{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetLimit(0) = %v, want ErrInvalid", err)
	}
}

func TestKindOfMagic(t *testing.T) {
	for magic, want := range map[uint32]Kind{
		unix.XFS_SUPER_MAGIC: KindXFS, unix.EXT4_SUPER_MAGIC: KindExt4,
		unix.BTRFS_SUPER_MAGIC: KindBtrfs, unix.TMPFS_MAGIC: KindOther,
	} {
		if got := kindOfMagic(magic); got != want {
			t.Errorf("kindOfMagic(%#x) = %s, want %s", magic, got, want)
		}
	}
}

// fakeProber says "in use" for the IDs in its set, and counts its calls.
type fakeProber struct {
	mu     sync.Mutex
	inUse  map[uint32]bool
	probed int
}

func (p *fakeProber) probe(id uint32) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.probed++
	return p.inUse[id], nil
}

func TestAllocator(t *testing.T) {
	p := &fakeProber{inUse: map[uint32]bool{11: true}}
	a, err := NewAllocator(10, 14, p.probe)
	if err != nil {
		t.Fatal(err)
	}
	a.MarkUsed(12, 0, 99)
	var got []uint32
	for {
		id, err := a.Allocate()
		if errors.Is(err, ErrExhausted) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	// 11 is used on the filesystem, 12 is marked from a record.
	if len(got) != 3 || got[0] != 10 || got[1] != 13 || got[2] != 14 {
		t.Fatalf("allocated %v, want [10 13 14]", got)
	}
	if !a.Held(12) || !a.Held(99) || a.Held(0) || a.Held(11) {
		t.Error("Held: marked IDs must be held, 0 never, probed ones not")
	}
	// Released IDs come back, after wrapping around.
	a.Release(13)
	a.Release(10)
	if id, err := a.Allocate(); err != nil || id != 10 {
		t.Errorf("after releasing 10 and 13: Allocate() = %d, %v; want 10 (wrapped)", id, err)
	}
	if id, err := a.Allocate(); err != nil || id != 13 {
		t.Errorf("Allocate() = %d, %v; want 13", id, err)
	}
}

func TestAllocatorErrors(t *testing.T) {
	for _, r := range [][2]uint32{{0, 10}, {5, 4}, {1, 1<<32 - 1}} {
		if _, err := NewAllocator(r[0], r[1], nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewAllocator(%d, %d) = %v, want ErrInvalid", r[0], r[1], err)
		}
	}
	boom := errors.New("boom")
	a, err := NewAllocator(1, 3, func(uint32) (bool, error) { return false, boom })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Allocate(); !errors.Is(err, boom) {
		t.Errorf("Allocate with a failing prober = %v, want it wrapped", err)
	}
	if a.Held(1) {
		t.Error("an ID that could not be checked was held")
	}
	a, _ = NewAllocator(DefaultLastID, DefaultLastID, nil)
	if id, err := a.Allocate(); err != nil || id != DefaultLastID {
		t.Errorf("Allocate at the top of the range = %d, %v", id, err)
	}
}

// TestAllocatorConcurrent: concurrent Allocates never return one ID twice
// (run with -race).
func TestAllocatorConcurrent(t *testing.T) {
	p := &fakeProber{inUse: map[uint32]bool{DefaultFirstID + 3: true}}
	a, err := NewAllocator(DefaultFirstID, DefaultLastID, p.probe)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 50
	ids := make(chan uint32, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				id, err := a.Allocate()
				if err != nil {
					t.Error(err)
					return
				}
				ids <- id
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[uint32]bool{}
	for id := range ids {
		if seen[id] || id == DefaultFirstID+3 || id < DefaultFirstID {
			t.Errorf("ID %d handed out twice, in use, or out of range", id)
		}
		seen[id] = true
	}
	if len(seen) != workers*each {
		t.Errorf("%d distinct IDs, want %d", len(seen), workers*each)
	}
}
