package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteConfig writes content, a pools file in YAML or JSON, to
// dir/config.yaml and returns that path, for PluginOptions.ConfigPath.
// Calling it again for the same dir replaces the file, so a test can change
// the configuration and then restart the plugin.
func WriteConfig(t testing.TB, dir, content string) string {
	t.Helper()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("writing config: %v", err)
	}
	return path
}
