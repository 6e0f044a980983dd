// Command release-manifests writes the install manifest of a release: the
// kustomize build of deploy/kubernetes (what `kubectl apply -k` applies)
// with the plugin's image tag set to the release's version. `make release`
// ships it as localdisk-VERSION.yaml.
//
//	go run ./hack/release-manifests -image-tag v0.2.0 [-component metrics] > localdisk.yaml
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	deploy "github.com/localdisk-csi/localdisk/deploy/kubernetes"
)

func main() {
	tag := flag.String("image-tag", "", "the plugin's image tag (required)")
	var components []string
	flag.Func("component", "add a component of deploy/kubernetes/components (repeatable)", func(s string) error {
		components = append(components, s)
		return nil
	})
	flag.Parse()
	if *tag == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: release-manifests -image-tag TAG [-component NAME]...")
		os.Exit(2)
	}
	data, err := deploy.Build(*tag, components...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "release-manifests:", err)
		os.Exit(1)
	}
	fmt.Printf("# localdisk %s: kubectl apply -f localdisk-%s.yaml (built from deploy/kubernetes%s)\n",
		*tag, *tag, strings.Join(append([]string{""}, components...), " + components/"))
	os.Stdout.Write(data)
}
