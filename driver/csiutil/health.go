package csiutil

import (
	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/localdisk-csi/localdisk/driver/volume"
	"github.com/localdisk-csi/localdisk/driver/volume/health"
)

// VolumeHealth is the CSI form of a volume's conditions (volume.Health):
// DEGRADED, INACCESSIBLE or DATA_LOSS entries, none for a healthy volume.
func VolumeHealth(id string, conds []volume.Condition) *csi.VolumeHealth {
	h := &csi.VolumeHealth{VolumeId: id}
	for _, c := range conds {
		status := csi.VolumeHealthErrorType_DEGRADED
		switch c.Severity {
		case health.Inaccessible:
			status = csi.VolumeHealthErrorType_INACCESSIBLE
		case health.DataLoss:
			status = csi.VolumeHealthErrorType_DATA_LOSS
		}
		h.HealthStatuses = append(h.HealthStatuses, &csi.VolumeHealth_VolumeHealthEntry{
			Status: status, Reason: c.Reason, Message: c.Message})
	}
	return h
}
