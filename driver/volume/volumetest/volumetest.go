// Package volumetest builds volume managers for the unit tests of the
// packages above driver/volume.
package volumetest

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// Discard is a log entry that writes nothing.
func Discard() *logrus.Entry {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return logrus.NewEntry(log)
}

// RootManager is a manager of one ROOT pool "r" of capacity bytes
// (accounting only) at dir/root, its state in dir/state; it is closed when
// tb ends.
func RootManager(tb testing.TB, dir string, capacity int64) *volume.Manager {
	tb.Helper()
	cfg := &pool.Config{Pools: []pool.Spec{{Name: "r", Kind: pool.Root, Path: filepath.Join(dir, "root"), Capacity: pool.Bytes(capacity)}}}
	m, err := volume.New(filepath.Join(dir, "state"), cfg, Discard())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}
