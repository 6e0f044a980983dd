package csiutil

import (
	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/localdisk-csi/localdisk/driver/volume"
)

// VolumeHealth is the CSI form of a volume's conditions (volume.Health):
// INACCESSIBLE or DEGRADED entries, none for a healthy volume.
func VolumeHealth(id string, conds []volume.Condition) *csi.VolumeHealth {
	h := &csi.VolumeHealth{VolumeId: id}
	for _, c := range conds {
		status := csi.VolumeHealthErrorType_DEGRADED
		if c.Inaccessible {
			status = csi.VolumeHealthErrorType_INACCESSIBLE
		}
		h.HealthStatuses = append(h.HealthStatuses, &csi.VolumeHealth_VolumeHealthEntry{
			Status: status, Reason: c.Reason, Message: c.Message})
	}
	return h
}
