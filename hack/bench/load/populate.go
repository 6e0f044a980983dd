package load

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// Populate adds volumes to the state of a stopped plugin until it holds n,
// the way the plugin itself would have left them after n CreateVolume
// calls: one ready record per volume in <stateDir>/volumes/<id>.json and
// the volume's directory in <poolDir>/localdisk/volumes/<id> (the layout and
// IDs of driver/layout). Each record is a copy of the template, the record
// of a volume created through CreateVolume (so its format is the plugin's
// own), with a new name (populated-NNNNNN) and the ID the plugin derives
// from it.
// The files are not fsync'd one by one; one syncfs makes them durable.
func Populate(stateDir, poolDir, templateID string, n int) error {
	recDir := layout.StateRecordsDir(stateDir)
	volDir := layout.PoolVolumesDir(poolDir)
	data, err := os.ReadFile(layout.RecordPath(stateDir, templateID))
	if err != nil {
		return fmt.Errorf("template record: %w", err)
	}
	var tmpl state.Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tmpl); err != nil {
		return fmt.Errorf("template record %s: %w (has the record format changed?)", templateID, err)
	}
	if tmpl.Phase != state.Ready {
		return fmt.Errorf("template record %s is %s, not ready", templateID, tmpl.Phase)
	}
	if fi, err := os.Stat(filepath.Join(volDir, templateID)); err != nil || !fi.IsDir() {
		return fmt.Errorf("template volume directory not found in %s (has the pool layout changed?): %v", volDir, err)
	}
	entries, err := os.ReadDir(recDir)
	if err != nil {
		return err
	}
	for i := 0; len(entries)+i < n; i++ {
		r := tmpl
		r.Name = fmt.Sprintf("populated-%06d", i)
		r.ID = layout.DirVolumeID(tmpl.Pool, r.Name)
		blob, err := json.Marshal(&r)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(recDir, layout.RecordFile(r.ID)), blob, 0o600); err != nil {
			return err
		}
		dir := filepath.Join(volDir, r.ID)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(dir, 0o755); err != nil { // Mkdir's mode is masked by umask
			return err
		}
	}
	for _, d := range []string{recDir, volDir} {
		fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = unix.Syncfs(fd)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("syncfs %s: %w", d, err)
		}
	}
	return nil
}
