package node

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

const (
	// pauseImage is the sandbox image, as containerd's CRI config names it.
	pauseImage = "docker.io/localdisk-e2e/pause:1"
	// busyboxImage is the workload image: Debian's static busybox.
	busyboxImage = "docker.io/localdisk-e2e/busybox:1"
	// busyboxBin is where Debian's busybox-static installs it.
	busyboxBin = "/bin/busybox"
)

// busyboxApplets are the commands of the workload image, links to busybox.
var busyboxApplets = []string{"sh", "cat", "echo", "sleep", "touch", "id", "ls", "dd", "stat", "test", "grep", "sync", "mkdir", "rm", "true", "false"}

// imageFile is one file of an image layer.
type imageFile struct {
	path     string // inside the image, without the leading slash
	mode     int64
	data     []byte
	linkname string // a symbolic link when set
}

// buildImages writes the sandbox and workload images as OCI archives into
// dir and returns their paths by image name.
func buildImages(t *testing.T, dir string) map[string]string {
	t.Helper()
	pause := buildPause(t, dir)
	bb, err := os.ReadFile(busyboxBin)
	if err != nil {
		t.Fatalf("the workload image needs Debian's busybox-static (hack/install-test-deps.sh): %v", err)
	}
	bbFiles := []imageFile{{path: "bin/busybox", mode: 0o755, data: bb}, {path: "tmp", mode: 0o1777}}
	for _, a := range busyboxApplets {
		bbFiles = append(bbFiles, imageFile{path: "bin/" + a, linkname: "busybox"})
	}
	out := map[string]string{}
	out[pauseImage] = writeOCIArchive(t, filepath.Join(dir, "pause.tar"), pauseImage,
		[]imageFile{{path: "pause", mode: 0o755, data: pause}}, []string{"/pause"}, nil)
	out[busyboxImage] = writeOCIArchive(t, filepath.Join(dir, "busybox.tar"), busyboxImage,
		bbFiles, nil, []string{"/bin/sh"})
	return out
}

// buildPause builds ./pause statically and returns the binary.
func buildPause(t *testing.T, dir string) []byte {
	t.Helper()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "pause")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./test/e2e/node/pause")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the pause binary: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    map[string]string `json:"platform,omitempty"`
}

// writeOCIArchive writes a one-layer image (uncompressed layer) as an OCI
// image layout in a tar archive, named for `ctr images import`.
func writeOCIArchive(t *testing.T, path, name string, files []imageFile, entrypoint, cmd []string) string {
	t.Helper()
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	epoch := time.Unix(0, 0)
	for _, f := range files {
		h := &tar.Header{Name: f.path, Mode: f.mode, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case f.linkname != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.linkname, 0o777
		case f.data == nil:
			h.Typeflag = tar.TypeDir
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if f.data != nil {
			if _, err := tw.Write(f.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	blobs := map[string][]byte{}
	add := func(data []byte) (string, int64) {
		sum := sha256.Sum256(data)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs[d] = data
		return d, int64(len(data))
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	layerDigest, layerSize := add(layer.Bytes())
	config := mustJSON(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Entrypoint": entrypoint, "Cmd": cmd,
			"Env": []string{"PATH=/bin"}, "WorkingDir": "/"},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	configDigest, configSize := add(config)
	manifest := mustJSON(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: configDigest, Size: configSize},
		"layers": []descriptor{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: layerDigest, Size: layerSize}},
	})
	manifestDigest, manifestSize := add(manifest)
	index := mustJSON(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []descriptor{{
			MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: manifestDigest, Size: manifestSize,
			Annotations: map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "1"},
			Platform:    map[string]string{"architecture": runtime.GOARCH, "os": "linux"},
		}},
	})

	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	aw := tar.NewWriter(f)
	put := func(name string, data []byte) {
		if err := aw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := aw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	put("index.json", index)
	for d, data := range blobs {
		put(fmt.Sprintf("blobs/sha256/%s", d[len("sha256:"):]), data)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
