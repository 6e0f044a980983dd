package metrics

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// The registry is gathered (the pool collector reads the volume manager)
// while volumes are created, expanded and deleted and the health check
// runs, as the health watch does: under -race, what it reads is never
// written under it, and every gather is whole. (test/race does the same
// with the real plugin, with disks wiped and devices erased.)
func TestCollect_UnderChurn(t *testing.T) {
	base := t.TempDir()
	cfg := &pool.Config{Pools: []pool.Spec{
		{Name: "r", Kind: pool.Root, Path: filepath.Join(base, "root"), Capacity: pool.Bytes(64 * pool.MiB)},
	}}
	log := logrus.New()
	log.SetOutput(io.Discard)
	vols, err := volume.New(filepath.Join(base, "state"), cfg, logrus.NewEntry(log))
	if err != nil {
		t.Fatal(err)
	}
	defer vols.Close()
	sel, err := vols.ParseSelector(map[string]string{layout.ParamPool: "r"})
	if err != nil {
		t.Fatal(err)
	}
	m := New(vols)
	ctx := context.Background()
	done := make(chan struct{})
	var churn, readers sync.WaitGroup
	for w := range 3 {
		churn.Go(func() {
			for i := range 20 {
				v, err := vols.Create(ctx, volume.CreateRequest{Name: fmt.Sprintf("v-%d-%d", w, i), Required: pool.MiB, Selector: sel})
				if err != nil {
					t.Error(err)
					continue
				}
				if _, err := vols.Expand(ctx, v.ID, 2*pool.MiB, 0); err != nil {
					t.Error(err)
				}
				if err := vols.Delete(ctx, v.ID); err != nil {
					t.Error(err)
				}
			}
		})
	}
	readers.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			vols.CheckHealth()
			vols.ResumeErases()
			vols.MeasureUse(context.Background())
		}
	})
	readers.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-done:
				if n > 0 {
					return
				}
			default:
			}
			families, err := m.reg.Gather()
			if err != nil {
				t.Errorf("gather: %v", err)
				return
			}
			found := false
			for _, f := range families {
				found = found || f.GetName() == "localdisk_pool_volumes"
			}
			if !found {
				t.Error("a gather without localdisk_pool_volumes")
				return
			}
		}
	})
	churn.Wait()
	close(done)
	readers.Wait()
	if n := vols.VolumeCounts()["r"]; n != 0 {
		t.Errorf("%d volumes left", n)
	}
}
