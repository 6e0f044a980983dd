package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	// ReadyTimeout bounds how long a component may take to become ready.
	ReadyTimeout = 2 * time.Minute
	// Controllers are the only controllers kube-controller-manager runs
	// (v1.37 names; the old ones, persistentvolume-binder, pvc-protection
	// and pv-protection, are aliases): the PV controller marks a PVC with a
	// selected node for the external provisioner and binds the PV it
	// creates; the protection controllers hold and release the finalizers.
	Controllers = "persistentvolume-binder-controller," +
		"persistentvolumeclaim-protection-controller,persistentvolume-protection-controller"
)

// Cluster is etcd, kube-apiserver and kube-controller-manager on loopback.
type Cluster struct {
	PKI       *PKI
	URL       string // https://127.0.0.1:port of the API server
	Admin     kubernetes.Interface
	APIServer *Process
	KCM       *Process
	Dynamic   dynamic.Interface // for the kinds of CRDs (VolumeSnapshots, ...)
	Tools     Tools
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts the control plane with the tools in toolsDir and the
// etcd binary etcd, keeping its files in dir, and returns once the API
// server is ready.
func Start(t *testing.T, dir string, tl Tools, extraControllers ...string) *Cluster {
	toolsDir, etcd := tl.Dir, tl.Etcd
	t.Helper()
	c := &Cluster{PKI: NewPKI(t, dir), Tools: tl}

	// etcd keeps its data in memory (tmpfs) when it can: it fsyncs a lot.
	dataParent := "/dev/shm"
	if fi, err := os.Stat(dataParent); err != nil || !fi.IsDir() {
		dataParent = dir
	}
	data, err := os.MkdirTemp(dataParent, "localdisk-e2e-etcd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(data) }) // after etcd has stopped (cleanups run in reverse)
	client := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	etcdProc := StartProcess(t, dir, "etcd", nil, etcd,
		"--name=e2e", "--data-dir="+data,
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=e2e="+peer, "--initial-cluster-state=new")
	WaitHTTP(t, etcdProc, &http.Client{Timeout: 2 * time.Second}, client+"/health", "")

	port := FreePort(t)
	c.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	c.APIServer = StartProcess(t, dir, "kube-apiserver", nil, filepath.Join(toolsDir, "kube-apiserver"),
		"--etcd-servers="+client,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(port),
		"--tls-cert-file="+c.PKI.CertFile, "--tls-private-key-file="+c.PKI.KeyFile,
		"--token-auth-file="+c.PKI.TokenFile, "--anonymous-auth=false",
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+c.PKI.SAPubFile,
		"--service-account-signing-key-file="+c.PKI.SAKeyFile,
		"--service-cluster-ip-range=10.0.0.0/24",
		// The "kubernetes" Service cannot point at a loopback address.
		"--endpoint-reconciler-type=none",
		// The DaemonSet's plugin container is privileged.
		"--allow-privileged=true",
		"--profiling=false", "--v=1")
	cfg := c.PKI.RestConfig(c.URL, c.PKI.AdminToken)
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	WaitHTTP(t, c.APIServer, httpClient, c.URL+"/readyz", c.PKI.AdminToken)
	if c.Admin, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if c.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}

	kubeconfig := c.PKI.WriteKubeconfig(t, "kube-controller-manager", c.URL, c.PKI.AdminToken)
	c.KCM = StartProcess(t, dir, "kube-controller-manager", nil, filepath.Join(toolsDir, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig,
		"--controllers="+strings.Join(append([]string{Controllers}, extraControllers...), ","),
		"--leader-elect=false", "--secure-port=0", "--v=2")
	return c
}

// WaitHTTP polls url until it answers 200 OK, failing the test if p exits
// first or ReadyTimeout passes.
func WaitHTTP(t *testing.T, p *Process, client *http.Client, url, token string) {
	t.Helper()
	deadline := time.Now().Add(ReadyTimeout)
	var last string
	for {
		p.CheckRunning(t)
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not ready within %v: %s\n%s", p.Name, url, ReadyTimeout, last, p.Tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
