package race

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestMetricsAndHealth_UnderChurn: while volumes are created, expanded and
// deleted in every pool (deletes of MOUNT disks given by path wipe them,
// deletes of device disks erase them, zeroing and recording their
// progress), /metrics is scraped without pause and the health watch ticks
// every 20 ms (CheckHealth, ResumeErases, MeasureUse). The plugin runs
// with the race detector: the records the scrape and the watch read are
// never written under them (newEnv fails the test on "DATA RACE").
func TestMetricsAndHealth_UnderChurn(t *testing.T) {
	addr := freeAddr(t)
	e := newEnvWith(t, testutil.EnvOptions{DeviceDisks: 2},
		"--metrics-address", addr, "--health-interval", "20ms")
	pools := []string{testutil.RootPool, testutil.PathPool, testutil.MountPool, testutil.DevicePool}
	const churners, rounds = 4, 8
	done := make(chan struct{})
	var churn, scrapers sync.WaitGroup
	for w := range churners {
		churn.Add(1)
		go func() {
			defer churn.Done()
			for i := range rounds {
				pool := pools[(w+i)%len(pools)]
				dir := pool == testutil.RootPool || pool == testutil.PathPool
				size := int64(0)
				if dir {
					size = 4 * testutil.MiB
				}
				churnOnce(t, e, fmt.Sprintf("scrape-%d-%d", w, i), pool, size, dir)
			}
		}()
	}
	scrapes := make([]int, 2)
	for s := range scrapes {
		scrapers.Add(1)
		go func() {
			defer scrapers.Done()
			for {
				select {
				case <-done:
					if scrapes[s] > 0 {
						return
					}
				default:
				}
				if err := scrapeOnce(addr); err != nil {
					t.Errorf("scrape under churn: %v", err)
					return
				}
				scrapes[s]++
			}
		}()
	}
	churn.Wait()
	close(done)
	scrapers.Wait()
	t.Logf("scrapes: %v", scrapes)
	if vols := e.CheckConverged(); len(vols) != 0 {
		t.Errorf("%d volumes left after the churn", len(vols))
	}
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrapeOnce gets /metrics and checks that it holds the pool gauges.
func scrapeOnce(addr string) error {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "localdisk_erase_backlog") {
		return fmt.Errorf("status %s, %d bytes without localdisk_erase_backlog", resp.Status, len(body))
	}
	return nil
}
