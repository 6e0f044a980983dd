package kubernetes

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	// readyTimeout bounds how long a component may take to become ready.
	readyTimeout = 2 * time.Minute
	// e2eControllers are the only controllers kube-controller-manager runs
	// (v1.37 names; the old ones, persistentvolume-binder, pvc-protection
	// and pv-protection, are aliases): the PV controller marks a PVC with a
	// selected node for the external provisioner and binds the PV it
	// creates; the protection controllers hold and release the finalizers.
	e2eControllers = "persistentvolume-binder-controller," +
		"persistentvolumeclaim-protection-controller,persistentvolume-protection-controller"
)

// cluster is etcd, kube-apiserver and kube-controller-manager on loopback.
type cluster struct {
	pki       *pki
	url       string // https://127.0.0.1:port of the API server
	admin     kubernetes.Interface
	apiserver *process
	kcm       *process
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startCluster starts the control plane with the tools in toolsDir and the
// etcd binary etcd, keeping its files in dir, and returns once the API
// server is ready.
func startCluster(t *testing.T, dir, toolsDir, etcd string) *cluster {
	t.Helper()
	c := &cluster{pki: newPKI(t, dir)}

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
	client := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	etcdProc := startProcess(t, dir, "etcd", nil, etcd,
		"--name=e2e", "--data-dir="+data,
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=e2e="+peer, "--initial-cluster-state=new")
	waitHTTP(t, etcdProc, &http.Client{Timeout: 2 * time.Second}, client+"/health", "")

	port := freePort(t)
	c.url = "https://127.0.0.1:" + strconv.Itoa(port)
	c.apiserver = startProcess(t, dir, "kube-apiserver", nil, filepath.Join(toolsDir, "kube-apiserver"),
		"--etcd-servers="+client,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(port),
		"--tls-cert-file="+c.pki.certFile, "--tls-private-key-file="+c.pki.keyFile,
		"--token-auth-file="+c.pki.tokenFile, "--anonymous-auth=false",
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+c.pki.saPubFile,
		"--service-account-signing-key-file="+c.pki.saKeyFile,
		"--service-cluster-ip-range=10.0.0.0/24",
		// The "kubernetes" Service cannot point at a loopback address.
		"--endpoint-reconciler-type=none",
		// The DaemonSet's plugin container is privileged.
		"--allow-privileged=true",
		"--profiling=false", "--v=1")
	cfg := c.pki.restConfig(c.url, c.pki.adminToken)
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitHTTP(t, c.apiserver, httpClient, c.url+"/readyz", c.pki.adminToken)
	if c.admin, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}

	kubeconfig := c.pki.writeKubeconfig(t, "kube-controller-manager", c.url, c.pki.adminToken)
	c.kcm = startProcess(t, dir, "kube-controller-manager", nil, filepath.Join(toolsDir, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig,
		"--controllers="+e2eControllers,
		"--leader-elect=false", "--secure-port=0", "--v=2")
	return c
}

// waitHTTP polls url until it answers 200 OK, failing the test if p exits
// first or readyTimeout passes.
func waitHTTP(t *testing.T, p *process, client *http.Client, url, token string) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	var last string
	for {
		p.checkRunning(t)
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
			t.Fatalf("%s: %s not ready within %v: %s\n%s", p.name, url, readyTimeout, last, p.tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
