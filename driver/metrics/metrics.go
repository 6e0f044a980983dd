// Package metrics exposes localdisk's Prometheus metrics: every RPC by
// service, method and code with a latency histogram, as the standard
// grpc_server_* metrics of go-grpc-middleware's Prometheus provider (one
// gRPC interceptor), and per pool its presence, capacity, allocation, free
// room, volume count, health and quota enforcement, read from the volume
// manager at scrape time.
package metrics

import (
	"context"
	"net"
	"net/http"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/localdisk-csi/localdisk/driver/volume"
)

// Buckets of grpc_server_handling_seconds: 100 µs to 60 s.
var Buckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Metrics is the plugin's registry.
type Metrics struct {
	reg  *prometheus.Registry
	grpc *grpcprom.ServerMetrics
}

// New registers the gRPC server metrics, the pool collector and the Go
// runtime and process collectors.
func New(vols *volume.Manager) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(Buckets))),
	}
	m.reg.MustRegister(m.grpc, poolCollector{vols},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Interceptor counts and times every unary RPC (grpc_server_started_total,
// grpc_server_handled_total by code, grpc_server_handling_seconds). It
// must run outside the recovery interceptor, so that a recovered panic is
// counted with the code it was turned into.
func (m *Metrics) Interceptor() grpc.UnaryServerInterceptor {
	return m.grpc.UnaryServerInterceptor()
}

// Serve serves /metrics on addr until ctx ends.
func (m *Metrics) Serve(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); err != http.ErrServerClosed {
		return err
	}
	return nil
}

var (
	poolLabels  = []string{"pool", "kind"}
	capacityD   = prometheus.NewDesc("localdisk_pool_capacity_bytes", "What the pool may hand out (MOUNT: the sum of its disks).", poolLabels, nil)
	allocatedD  = prometheus.NewDesc("localdisk_pool_allocated_bytes", "Capacity charged to the pool's volumes.", poolLabels, nil)
	freeD       = prometheus.NewDesc("localdisk_pool_free_bytes", "What the pool can still offer, as GetCapacity: at most its filesystem's free space minus its reserve (MOUNT: usable unclaimed disks).", poolLabels, nil)
	volumesD    = prometheus.NewDesc("localdisk_pool_volumes", "Volumes recorded in the pool, in any phase.", poolLabels, nil)
	healthyD    = prometheus.NewDesc("localdisk_pool_healthy", "1 when the pool's disk is present and the recorded one, else 0.", poolLabels, nil)
	presentD    = prometheus.NewDesc("localdisk_pool_present", "0 when the pool is optional and absent from this node (no path, no disk, no volume), else 1.", poolLabels, nil)
	quotaD      = prometheus.NewDesc("localdisk_pool_quota_enforced", "1 when the pool enforces volume capacities with quotas.", poolLabels, nil)
	eraseQueueD = prometheus.NewDesc("localdisk_erase_backlog", "Disks waiting for their erase to complete.", nil, nil)
	usedD       = prometheus.NewDesc("localdisk_pool_used_bytes", "What the volumes of a ROOT/PATH pool that accounts capacity without enforcing it hold together.", poolLabels, nil)
	fsSizeD     = prometheus.NewDesc("localdisk_pool_filesystem_size_bytes", "The size of a ROOT/PATH pool's filesystem.", poolLabels, nil)
	fsFreeD     = prometheus.NewDesc("localdisk_pool_filesystem_free_bytes", "The free space of a ROOT/PATH pool's filesystem, whoever writes there.", poolLabels, nil)
)

// poolCollector reads the pools at scrape time.
type poolCollector struct{ vols *volume.Manager }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{capacityD, allocatedD, freeD, volumesD, healthyD, presentD, quotaD, eraseQueueD, usedD, fsSizeD, fsFreeD} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.vols.VolumeCounts()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, p := range c.vols.Pools() {
		u := c.vols.PoolUsage(p)
		l := []string{p.Name, string(p.Kind)}
		gauge(capacityD, float64(u.Capacity), l...)
		gauge(allocatedD, float64(u.Allocated), l...)
		gauge(freeD, float64(u.Free), l...)
		gauge(volumesD, float64(counts[p.Name]), l...)
		gauge(healthyD, b2f(p.Healthy()), l...)
		gauge(presentD, b2f(p.Present()), l...)
		gauge(quotaD, b2f(p.Enforcement() != ""), l...)
		if used, ok := p.Used(); ok {
			gauge(usedD, float64(used), l...)
		}
		if size, free, ok := p.Filesystem(); ok {
			gauge(fsSizeD, float64(size), l...)
			gauge(fsFreeD, float64(free), l...)
		}
	}
	gauge(eraseQueueD, float64(c.vols.EraseBacklog()))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
