package mesos_test

// Mirrors of the Mesos messages, written from the protos (apache/mesos
// include/mesos/mesos.proto, src/resource_provider/storage/disk_profile.proto,
// and csi.v0's VolumeCapability it imports), independently of the package's
// own types. Every field of each message is listed under its proto name, so a
// strict decode fails on any key Mesos would not know (the agent's parser
// silently drops those). Fields localdisk never writes are json.RawMessage.

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

// DiskProfileMapping (proto3, disk_profile.proto).
type pbDiskProfileMapping struct {
	ProfileMatrix map[string]pbCSIManifest `json:"profile_matrix"`
}

type pbCSIManifest struct {
	ResourceProviderSelector *struct {
		ResourceProviders []struct {
			Type string `json:"type"`
			Name string `json:"name"`
		} `json:"resource_providers"`
	} `json:"resource_provider_selector"`
	CSIPluginTypeSelector *struct {
		PluginType string `json:"plugin_type"`
	} `json:"csi_plugin_type_selector"`
	VolumeCapabilities *pbV0VolumeCapability `json:"volume_capabilities"`
	CreateParameters   map[string]string     `json:"create_parameters"`
}

// csi.v0.VolumeCapability.
type pbV0VolumeCapability struct {
	Block *struct{} `json:"block"`
	Mount *struct {
		FSType     *string  `json:"fs_type"`
		MountFlags []string `json:"mount_flags"`
	} `json:"mount"`
	AccessMode *struct {
		Mode *string `json:"mode"`
	} `json:"access_mode"`
}

var v0AccessModes = []string{"UNKNOWN", "SINGLE_NODE_WRITER", "SINGLE_NODE_READER_ONLY",
	"MULTI_NODE_READER_ONLY", "MULTI_NODE_SINGLE_WRITER", "MULTI_NODE_MULTI_WRITER"}

// ResourceProviderInfo (proto2, mesos.proto).
type pbResourceProviderInfo struct {
	ID                  json.RawMessage   `json:"id"`
	Attributes          []json.RawMessage `json:"attributes"`
	Type                *string           `json:"type"` // required
	Name                *string           `json:"name"` // required
	DefaultReservations []json.RawMessage `json:"default_reservations"`
	Storage             *struct {
		Plugin                        *pbCSIPluginInfo `json:"plugin"` // required
		ReconciliationIntervalSeconds *float64         `json:"reconciliation_interval_seconds"`
	} `json:"storage"`
}

// CSIPluginInfo (mesos.proto).
type pbCSIPluginInfo struct {
	Type             *string                    `json:"type"` // required
	Name             *string                    `json:"name"` // default "default"
	Containers       []pbCSIPluginContainerInfo `json:"containers"`
	Endpoints        []pbCSIPluginEndpoint      `json:"endpoints"`
	TargetPathRoot   *string                    `json:"target_path_root"`
	TargetPathExists *bool                      `json:"target_path_exists"`
}

type pbCSIPluginContainerInfo struct {
	Services  []string        `json:"services"`
	Command   *pbCommandInfo  `json:"command"`
	Resources []pbResource    `json:"resources"`
	Container json.RawMessage `json:"container"`
}

var csiServices = []string{"UNKNOWN", "CONTROLLER_SERVICE", "NODE_SERVICE"}

type pbCSIPluginEndpoint struct {
	CSIService *string `json:"csi_service"` // required
	Endpoint   *string `json:"endpoint"`    // required
}

type pbCommandInfo struct {
	URIs        []json.RawMessage `json:"uris"`
	Environment json.RawMessage   `json:"environment"`
	Shell       *bool             `json:"shell"` // default true
	Value       *string           `json:"value"`
	Arguments   []string          `json:"arguments"`
	User        *string           `json:"user"`
}

type pbResource struct {
	ProviderID     json.RawMessage   `json:"provider_id"`
	Name           *string           `json:"name"` // required
	Type           *string           `json:"type"` // required
	Scalar         *pbScalar         `json:"scalar"`
	Ranges         json.RawMessage   `json:"ranges"`
	Set            json.RawMessage   `json:"set"`
	Role           *string           `json:"role"`
	AllocationInfo json.RawMessage   `json:"allocation_info"`
	Reservation    json.RawMessage   `json:"reservation"`
	Reservations   []json.RawMessage `json:"reservations"`
	Disk           json.RawMessage   `json:"disk"`
	Revocable      json.RawMessage   `json:"revocable"`
	Shared         json.RawMessage   `json:"shared"`
}

var valueTypes = []string{"SCALAR", "RANGES", "SET", "TEXT"}

type pbScalar struct {
	Value *float64 `json:"value"` // required
}

// decodeStrict decodes one JSON value into v, failing on unknown fields and
// trailing data.
func decodeStrict(t *testing.T, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("strict decode into %T: %v\n%s", v, err, data)
	}
	if dec.More() {
		t.Fatalf("trailing data after the document:\n%s", data)
	}
}

// checkEnum fails unless v is one of the enum's value names.
func checkEnum(t *testing.T, field, v string, values []string) {
	t.Helper()
	if !slices.Contains(values, v) {
		t.Errorf("%s = %q, not a value of the enum %v", field, v, values)
	}
}

// checkPluginInfo checks what the agent requires of any CSIPluginInfo.
func checkPluginInfo(t *testing.T, p *pbCSIPluginInfo) {
	t.Helper()
	if p == nil || p.Type == nil || *p.Type == "" {
		t.Fatalf("CSIPluginInfo.type is required: %+v", p)
	}
	if (len(p.Containers) > 0) == (len(p.Endpoints) > 0) {
		t.Errorf("exactly one of containers and endpoints must be set")
	}
	for _, c := range p.Containers {
		for _, s := range c.Services {
			checkEnum(t, "services", s, csiServices)
		}
		for _, r := range c.Resources {
			if r.Name == nil || r.Type == nil || r.Scalar == nil || r.Scalar.Value == nil {
				t.Errorf("resource misses a required field: %+v", r)
				continue
			}
			checkEnum(t, "resources.type", *r.Type, valueTypes)
		}
	}
	for _, e := range p.Endpoints {
		if e.CSIService == nil || e.Endpoint == nil {
			t.Errorf("endpoint misses a required field: %+v", e)
			continue
		}
		checkEnum(t, "csi_service", *e.CSIService, csiServices)
	}
}
