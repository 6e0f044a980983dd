// Package release tests `make release` and the Dockerfile it builds the
// image with. The release itself (two cross-compiled binaries, helm) is
// skipped with -short.
package release

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	deploy "github.com/localdisk-csi/localdisk/deploy/kubernetes"
)

const root = "../.."

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := strings.ReplaceAll(string(data), "\\\n", " ")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^FROM --platform=\$BUILDPLATFORM \S+ AS build$`),
		regexp.MustCompile(`(?m)^ARG TARGETOS TARGETARCH$`),
		regexp.MustCompile(`(?m)^RUN CGO_ENABLED=0 GOOS=\$TARGETOS GOARCH=\$TARGETARCH go build -trimpath `),
		regexp.MustCompile(`driver\.Version=\$\{VERSION\}`),
	} {
		if !want.MatchString(df) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	labels := map[string]string{}
	for _, m := range regexp.MustCompile(`(org\.opencontainers\.image\.[a-z]+)="([^"]*)"`).FindAllStringSubmatch(df, -1) {
		labels[m[1]] = m[2]
	}
	for name, want := range map[string]string{
		"title": "localdisk", "source": "https://github.com/localdisk-csi/localdisk", "licenses": "Apache-2.0",
		"version": "${VERSION}", "revision": "${REVISION}", "description": "",
	} {
		got, ok := labels["org.opencontainers.image."+name]
		if !ok || (want != "" && got != want) || got == "" {
			t.Errorf("Dockerfile: label org.opencontainers.image.%s = %q, want %q", name, got, want)
		}
	}
}

type release struct {
	dir, version string
}

func TestMakeRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: cross-compiles two binaries and builds helm")
	}
	out := t.TempDir()
	const version = "v0.0.0-test"
	cmd := exec.Command("make", "--no-print-directory", "-C", root, "release", "VERSION="+version, "OUTPUT="+out)
	logs, err := cmd.CombinedOutput()
	t.Logf("make release:\n%s", logs)
	if err != nil {
		t.Fatalf("make release: %v", err)
	}
	r := release{dir: filepath.Join(out, "release"), version: version}
	sums := r.checkSums(t)
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		name := "localdisk-" + version + "-linux-" + arch + ".tar.gz"
		if !slices.Contains(sums, name) {
			t.Errorf("SHA256SUMS lacks %s", name)
		}
		r.checkTarball(t, name, machine)
	}
	for _, name := range []string{"localdisk-" + version + ".yaml", "localdisk-0.0.0-test.tgz"} {
		if !slices.Contains(sums, name) {
			t.Errorf("SHA256SUMS lacks %s", name)
		}
	}
	r.checkManifest(t)
	r.checkChart(t)
	if !bytes.Contains(logs, []byte("docker buildx")) {
		t.Error("make release says nothing of the image (docker buildx)")
	}
}

// checkSums checks every line of SHA256SUMS against its file, and that it
// lists every file of the release; it returns the names.
func (r release) checkSums(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS: bad line %q", sc.Text())
		}
		names = append(names, name)
		f, err := os.ReadFile(filepath.Join(r.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(f)
		if hex.EncodeToString(h[:]) != sum {
			t.Errorf("SHA256SUMS: %s does not match", name)
		}
	}
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "SHA256SUMS" && !slices.Contains(names, e.Name()) {
			t.Errorf("%s is in the release but not in SHA256SUMS", e.Name())
		}
	}
	return names
}

// checkTarball checks that the tarball holds LICENSE, README.md and a static
// ELF binary for machine that reports the version.
func (r release) checkTarball(t *testing.T, name string, machine elf.Machine) {
	t.Helper()
	f, err := os.Open(filepath.Join(r.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := strings.TrimSuffix(name, ".tar.gz") + "/"
	files := map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.HasPrefix(h.Name, dir) {
			t.Errorf("%s: %s is not under %s", name, h.Name, dir)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimPrefix(h.Name, dir)] = b
			if h.Uid != 0 || h.Gid != 0 {
				t.Errorf("%s: %s is owned by %d:%d", name, h.Name, h.Uid, h.Gid)
			}
		}
	}
	for _, want := range []string{"localdisk", "LICENSE", "README.md", "CHANGELOG.md"} {
		if _, ok := files[want]; !ok {
			t.Errorf("%s lacks %s (has %v)", name, want, slices.Sorted(maps.Keys(files)))
		}
	}
	bin := files["localdisk"]
	e, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("%s: localdisk is not ELF: %v", name, err)
	}
	defer e.Close()
	if e.Machine != machine {
		t.Errorf("%s: localdisk is for %v, want %v", name, e.Machine, machine)
	}
	for _, p := range e.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: localdisk has a %v segment: not static", name, p.Type)
		}
	}
	if !bytes.Contains(bin, []byte(r.version)) {
		t.Errorf("%s: localdisk does not hold its version %s", name, r.version)
	}
	if machine == elf.EM_X86_64 && isAMD64() {
		tmp := filepath.Join(t.TempDir(), "localdisk")
		if err := os.WriteFile(tmp, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(tmp, "version").Output()
		first, _, _ := strings.Cut(string(out), "\n") // the version; details follow
		if err != nil || strings.TrimSpace(first) != r.version {
			t.Errorf("%s: localdisk version: %q, %v; want %s on its first line", name, out, err, r.version)
		}
	}
}

// checkManifest checks that the shipped manifest is the kustomize build with
// the plugin's image at the release's version.
func (r release) checkManifest(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.dir, "localdisk-"+r.version+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := deploy.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	want, err := deploy.Build(r.version)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(data, want) {
		t.Error("localdisk-VERSION.yaml is not the kustomize build of deploy/kubernetes with the image tag VERSION")
	}
	var ds *appsv1.DaemonSet
	var snapshotClasses []string
	for _, d := range docs {
		switch obj := d.(type) {
		case *appsv1.DaemonSet:
			ds = obj
		case *unstructured.Unstructured:
			if obj.GetKind() == "VolumeSnapshotClass" {
				snapshotClasses = append(snapshotClasses, obj.GetName())
			}
		}
	}
	if ds == nil {
		t.Fatal("the release's manifest has no DaemonSet")
	}
	if img := ds.Spec.Template.Spec.Containers[0].Image; img != deploy.Image+":"+r.version {
		t.Errorf("the release's DaemonSet runs %s, want %s:%s", img, deploy.Image, r.version)
	}
	// Snapshots ship by default: the sidecar at the e2e test's release
	// (hack/tools/csi-snapshotter) and the VolumeSnapshotClass.
	snapshotter := "registry.k8s.io/sig-storage/csi-snapshotter:" + toolVersion(t, "csi-snapshotter", "github.com/kubernetes-csi/external-snapshotter/v8")
	if !slices.ContainsFunc(ds.Spec.Template.Spec.Containers, func(c corev1.Container) bool {
		return c.Name == "csi-snapshotter" && c.Image == snapshotter
	}) {
		t.Errorf("the release's DaemonSet has no csi-snapshotter container running %s", snapshotter)
	}
	if !slices.Equal(snapshotClasses, []string{"localdisk"}) {
		t.Errorf("the release's manifest has VolumeSnapshotClasses %v, want [localdisk]", snapshotClasses)
	}
}

// toolVersion is the version of module that hack/tools/<dir>/go.mod requires.
func toolVersion(t *testing.T, dir, module string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "hack", "tools", dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + ` (v\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("hack/tools/%s/go.mod does not require %s", dir, module)
	}
	return string(m[1])
}

// checkChart checks the packaged chart's version and appVersion.
func (r release) checkChart(t *testing.T) {
	t.Helper()
	f, err := os.Open(filepath.Join(r.dir, "localdisk-0.0.0-test.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = data
	}
	data, ok := files["localdisk/Chart.yaml"]
	if !ok {
		t.Fatal("the packaged chart has no localdisk/Chart.yaml")
	}
	var chart struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil {
		t.Fatal(err)
	}
	if chart.Version != "0.0.0-test" || chart.AppVersion != r.version {
		t.Errorf("packaged chart: version %q, appVersion %q; want 0.0.0-test and %s", chart.Version, chart.AppVersion, r.version)
	}
	if _, ok := files["localdisk/templates/volumesnapshotclass.yaml"]; !ok {
		t.Error("the packaged chart has no templates/volumesnapshotclass.yaml")
	}
	var values struct {
		Snapshots struct {
			Enabled bool `json:"enabled"`
		} `json:"snapshots"`
	}
	if err := yaml.Unmarshal(files["localdisk/values.yaml"], &values); err != nil || !values.Snapshots.Enabled {
		t.Errorf("the packaged chart's values.yaml: snapshots.enabled %v (%v), want true", values.Snapshots.Enabled, err)
	}
}

func TestMakeRelease_RefusesBadVersion(t *testing.T) {
	out := t.TempDir()
	logs, err := exec.Command("make", "--no-print-directory", "-C", root, "release", "VERSION=1.2", "OUTPUT="+out).CombinedOutput()
	if err == nil || !strings.Contains(string(logs), "not vMAJOR.MINOR.PATCH") {
		t.Errorf("make release VERSION=1.2: %v\n%s", err, logs)
	}
	if _, err := os.Stat(filepath.Join(out, "release")); !os.IsNotExist(err) {
		t.Errorf("make release VERSION=1.2 made %s/release (%v)", out, err)
	}
}

func isAMD64() bool {
	out, err := exec.Command("uname", "-m").Output()
	return err == nil && strings.TrimSpace(string(out)) == "x86_64"
}
