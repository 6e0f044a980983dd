package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/localdisk-csi/localdisk/driver"
)

// csiSpecModule is the module of the CSI spec that the plugin implements.
const csiSpecModule = "github.com/container-storage-interface/spec"

// unknown is what versionInfo says of what the binary does not know.
const unknown = "unknown"

// versionInfo describes a binary (`localdisk version -o json`).
type versionInfo struct {
	// Version is driver.Version when the build set it (make build: git
	// describe), else the main module's version that the Go toolchain
	// stamped (go install ...@v1.2.3, or a pseudo-version from the
	// repository), else "dev".
	Version string `json:"version"`
	// GitRevision is the commit built from (vcs.revision), "unknown" when
	// the toolchain stamped none (-buildvcs=false, a build outside a git
	// work tree) and the version does not name one.
	GitRevision string `json:"gitRevision"`
	// GitDirty says whether the work tree had uncommitted changes
	// (vcs.modified); null when unknown.
	GitDirty *bool `json:"gitDirty"`
	// GitCommitTime is the commit's time, RFC 3339 (vcs.time); empty when
	// unknown.
	GitCommitTime string `json:"gitCommitTime,omitempty"`
	// GoVersion built the binary.
	GoVersion string `json:"goVersion"`
	// CSISpecVersion is the version of the CSI spec module linked in.
	CSISpecVersion string `json:"csiSpecVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// newVersionCmd is `localdisk version`.
func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version [-o text|json]",
		Short: "Print the version, git revision, Go and CSI spec versions",
		Long: `Print the version (first line), then the git revision and whether the work
tree was dirty, the Go version and the CSI spec version. A binary built with
plain 'go build' or 'go install' knows them from its Go build information.`,
		Args:                  noArgs,
		DisableFlagsInUseLine: true, // Use names them
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			bi = nil
		}
		v := readVersion(driver.Version, bi)
		switch output {
		case "text":
			v.writeText(cmd.OutOrStdout())
		case "json":
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			if err := enc.Encode(v); err != nil {
				return failed(err)
			}
		default:
			return fmt.Errorf("--output %q: want text or json", output)
		}
		return nil
	}
	return cmd
}

// readVersion describes the binary of version (driver.Version) and build
// information bi (nil: none).
func readVersion(version string, bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: version, GitRevision: unknown, GoVersion: runtime.Version(),
		CSISpecVersion: unknown, Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return v
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.GitRevision = s.Value
		case "vcs.modified":
			dirty := s.Value == "true"
			v.GitDirty = &dirty
		case "vcs.time":
			v.GitCommitTime = s.Value
		}
	}
	mainVersion := bi.Main.Version
	if v.Version == "" || v.Version == "dev" {
		if mainVersion != "" && mainVersion != "(devel)" {
			v.Version = mainVersion
		} else {
			v.Version = "dev"
		}
	}
	if v.GitRevision == unknown {
		// go install ...@<pseudo-version> names the commit's prefix.
		if rev := pseudoRevision(mainVersion); rev != "" {
			v.GitRevision = rev
		}
	}
	for _, d := range bi.Deps {
		if d.Path == csiSpecModule {
			if d.Replace != nil && d.Replace.Version != "" {
				d = d.Replace
			}
			v.CSISpecVersion = d.Version
		}
	}
	return v
}

// pseudoRevision is the 12-digit commit prefix of a Go pseudo-version
// (vX.Y.Z-[pre.]yyyymmddhhmmss-abcdef123456[+incompatible]), or "".
func pseudoRevision(version string) string {
	version, _, _ = strings.Cut(version, "+")
	i := strings.LastIndexByte(version, '-')
	if i < 0 || len(version)-i-1 != 12 || strings.Trim(version[i+1:], "0123456789abcdef") != "" {
		return ""
	}
	stamp := version[:i]
	j := strings.LastIndexAny(stamp, "-.")
	if j < 0 || len(stamp)-j-1 != 14 || strings.Trim(stamp[j+1:], "0123456789") != "" {
		return ""
	}
	return version[i+1:]
}

// writeText prints v for people: the version alone on the first line.
func (v versionInfo) writeText(w io.Writer) {
	dirty := unknown
	if v.GitDirty != nil {
		dirty = fmt.Sprint(*v.GitDirty)
	}
	fmt.Fprintln(w, v.Version)
	fmt.Fprintf(w, "git revision:  %s\n", v.GitRevision)
	fmt.Fprintf(w, "git dirty:     %s\n", dirty)
	if v.GitCommitTime != "" {
		fmt.Fprintf(w, "git time:      %s\n", v.GitCommitTime)
	}
	fmt.Fprintf(w, "go:            %s %s\n", v.GoVersion, v.Platform)
	fmt.Fprintf(w, "CSI spec:      %s\n", v.CSISpecVersion)
}
