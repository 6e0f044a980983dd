package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/metrics"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume"
	"github.com/localdisk-csi/localdisk/driver/wire"
)

// panicky is an Identity service whose Probe panics.
type panicky struct {
	csi.UnimplementedIdentityServer
}

func (panicky) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	var m map[string]int
	m["boom"]++ // a nil map write: a runtime panic
	return nil, nil
}

func (panicky) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: "localdisk.csi.io", VendorVersion: "test"}, nil
}

// TestInterceptors_Panic: a panicking RPC answers Internal, the server
// goes on serving, the panic is logged with its stack and counted as
// grpc_server_handled_total{grpc_code="Internal"}; an RPC that succeeds
// is timed in grpc_server_handling_seconds and logged as one "rpc" line.
func TestInterceptors_Panic(t *testing.T) {
	dir := t.TempDir()
	var logBuf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&logBuf)
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetLevel(logrus.DebugLevel)
	quietLog := logrus.New()
	quietLog.SetOutput(io.Discard)
	vols, err := volume.New(filepath.Join(dir, "state"), pool.Default(filepath.Join(dir, "state")), logrus.NewEntry(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	defer vols.Close()
	m := metrics.New(vols)
	srv := grpc.NewServer(grpc.ForceServerCodecV2(wire.NewCodec()),
		grpc.ChainUnaryInterceptor(interceptors(logrus.NewEntry(log).WithField("component", "grpc"), m)...))
	csi.RegisterIdentityServer(srv, panicky{})
	l, err := net.Listen("unix", filepath.Join(dir, "csi.sock"))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Stop()
	conn, err := grpc.NewClient("unix://"+l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	id := csi.NewIdentityClient(conn)
	ctx := context.Background()

	if _, err := id.Probe(ctx, &csi.ProbeRequest{}); status.Code(err) != codes.Internal || status.Convert(err).Message() != "internal error" {
		t.Fatalf("Probe: %v, want Internal: internal error", err)
	}
	info, err := id.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil || info.GetName() != "localdisk.csi.io" {
		t.Fatalf("GetPluginInfo after the panic: %v %v", info, err)
	}
	if _, err := id.GetPluginCapabilities(ctx, &csi.GetPluginCapabilitiesRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("GetPluginCapabilities: %v, want Unimplemented", err)
	}

	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go m.Serve(mctx, ml)
	resp, err := http.Get("http://" + ml.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	scraped := string(body)
	for _, want := range []string{
		`grpc_server_handled_total{grpc_code="Internal",grpc_method="Probe",grpc_service="csi.v1.Identity",grpc_type="unary"} 1`,
		`grpc_server_started_total{grpc_method="Probe",grpc_service="csi.v1.Identity",grpc_type="unary"} 1`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="GetPluginInfo",grpc_service="csi.v1.Identity",grpc_type="unary"} 1`,
		`grpc_server_handled_total{grpc_code="Unimplemented",grpc_method="GetPluginCapabilities",grpc_service="csi.v1.Identity",grpc_type="unary"} 1`,
		`grpc_server_handling_seconds_bucket{grpc_method="GetPluginInfo",grpc_service="csi.v1.Identity",grpc_type="unary",le="0.0001"}`,
		`grpc_server_handling_seconds_count{grpc_method="GetPluginInfo",grpc_service="csi.v1.Identity",grpc_type="unary"} 1`,
		`localdisk_pool_healthy{kind="root",pool="root"} 1`,
	} {
		if !strings.Contains(scraped, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(scraped, "grpc_server_"))
	}

	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logBuf.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		lines = append(lines, e)
	}
	if len(lines) != 4 {
		t.Fatalf("%d log lines, want 4 (panic, Probe, GetPluginInfo, GetPluginCapabilities):\n%s", len(lines), logBuf.String())
	}
	panicLine, probe, info2, caps := lines[0], lines[1], lines[2], lines[3]
	if msg, _ := panicLine["msg"].(string); panicLine["level"] != "error" || panicLine["method"] != "Probe" ||
		!strings.HasPrefix(msg, "panic: assignment to entry in nil map\n") || !strings.Contains(msg, "driver.panicky.Probe") {
		t.Errorf("panic line: %v", panicLine)
	}
	for _, c := range []struct {
		line                map[string]any
		level, msg, method  string
		code, err, notField string
	}{
		{probe, "error", "rpc failed", "Probe", "Internal", "rpc error: code = Internal desc = internal error", "grpc.service"},
		{info2, "debug", "rpc", "GetPluginInfo", "OK", "", "peer.address"},
		{caps, "warning", "rpc failed", "GetPluginCapabilities", "Unimplemented", "rpc error: code = Unimplemented desc = method GetPluginCapabilities not implemented", "grpc.start_time"},
	} {
		e := c.line
		if e["level"] != c.level || e["msg"] != c.msg || e["method"] != c.method || e["code"] != c.code ||
			e["component"] != "grpc" || e["duration"] == nil || c.err != "" && e["error"] != c.err || e[c.notField] != nil {
			t.Errorf("log line %v, want level %s msg %q method %s code %s error %q, with component and duration, without %s",
				e, c.level, c.msg, c.method, c.code, c.err, c.notField)
		}
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// requestFields are logged, never secrets.
func TestLogInterceptor_RequestFields(t *testing.T) {
	var logBuf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&logBuf)
	log.SetFormatter(&logrus.JSONFormatter{})
	chain := interceptors(logrus.NewEntry(log), nil)
	req := &csi.CreateVolumeRequest{Name: "pvc-1", Parameters: map[string]string{"pool": "data"}, Secrets: map[string]string{"k": "secret"}}
	h := func(context.Context, any) (any, error) { return &csi.CreateVolumeResponse{}, nil }
	info := &grpc.UnaryServerInfo{FullMethod: "/csi.v1.Controller/CreateVolume"}
	_, err := chain[0](context.Background(), req, info, func(ctx context.Context, req any) (any, error) {
		return chain[1](ctx, req, info, h)
	})
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]any
	if err := json.Unmarshal(logBuf.Bytes(), &e); err != nil {
		t.Fatalf("%v: %s", err, logBuf.String())
	}
	if e["msg"] != "rpc" || e["level"] != "info" || e["method"] != "CreateVolume" || e["name"] != "pvc-1" || e["pool"] != "data" ||
		e["num_secrets"] != float64(1) || strings.Contains(logBuf.String(), "secret\"") {
		t.Errorf("log line %s", logBuf.String())
	}
}
