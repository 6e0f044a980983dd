package mesos

// DiskProfileMapping is the document the URI disk profile adaptor polls
// (mesos.resource_provider.DiskProfileMapping).
type DiskProfileMapping struct {
	// ProfileMatrix maps a profile name to how volumes of that profile are
	// made.
	ProfileMatrix map[string]CSIManifest `json:"profile_matrix"`
}

// CSIManifest is one profile (DiskProfileMapping.CSIManifest).
type CSIManifest struct {
	// CSIPluginTypeSelector applies the profile to every resource provider
	// whose plugin has this type.
	CSIPluginTypeSelector *CSIPluginTypeSelector `json:"csi_plugin_type_selector,omitempty"`
	// VolumeCapabilities is the one capability of CreateVolume,
	// GetCapacity and publishing (a csi.v0.VolumeCapability).
	VolumeCapabilities VolumeCapability `json:"volume_capabilities"`
	// CreateParameters are the parameters of CreateVolume and GetCapacity.
	CreateParameters map[string]string `json:"create_parameters,omitempty"`
}

// CSIPluginTypeSelector selects resource providers by plugin type.
type CSIPluginTypeSelector struct {
	// PluginType is matched against ResourceProviderInfo.storage.plugin.type.
	PluginType string `json:"plugin_type"`
}

// VolumeCapability is a csi.v0.VolumeCapability with a mount access type.
type VolumeCapability struct {
	// Mount is the mount access type; an empty one is written as {}.
	Mount *MountVolume `json:"mount,omitempty"`
	// AccessMode is required by the adaptor.
	AccessMode AccessMode `json:"access_mode"`
}

// MountVolume is csi.v0.VolumeCapability.MountVolume.
type MountVolume struct {
	// FSType is left empty: a localdisk volume shows its pool's filesystem.
	FSType string `json:"fs_type,omitempty"`
	// MountFlags are not served by localdisk.
	MountFlags []string `json:"mount_flags,omitempty"`
}

// AccessMode is csi.v0.VolumeCapability.AccessMode.
type AccessMode struct {
	// Mode is an enum value name, e.g. SINGLE_NODE_WRITER.
	Mode string `json:"mode"`
}

// ResourceProviderInfo configures one resource provider (mesos.proto).
type ResourceProviderInfo struct {
	// Type is ProviderType.
	Type string `json:"type"`
	// Name distinguishes instances of the type: [A-Za-z0-9_]+.
	Name string `json:"name"`
	// Storage holds the CSI plugin.
	Storage *Storage `json:"storage,omitempty"`
}

// Storage is ResourceProviderInfo.Storage.
type Storage struct {
	// Plugin is the managed CSI plugin.
	Plugin CSIPluginInfo `json:"plugin"`
}

// CSIPluginInfo describes a CSI plugin (mesos.proto): managed (Containers)
// or unmanaged (Endpoints).
type CSIPluginInfo struct {
	// Type identifies the plugin implementation; a CSI volume's plugin_name
	// names it.
	Type string `json:"type"`
	// Name distinguishes instances of the type.
	Name string `json:"name,omitempty"`
	// Containers run a managed plugin.
	Containers []CSIPluginContainerInfo `json:"containers,omitempty"`
	// Endpoints reach an unmanaged plugin.
	Endpoints []CSIPluginEndpoint `json:"endpoints,omitempty"`
	// TargetPathRoot replaces <work_dir>/csi/<type>/<name>/mounts as the root
	// of the staging and target paths.
	TargetPathRoot string `json:"target_path_root,omitempty"`
	// TargetPathExists makes Mesos create the target path itself, for
	// plugins that need it; localdisk creates it, so it stays false.
	TargetPathExists bool `json:"target_path_exists,omitempty"`
}

// CSIPluginContainerInfo is one container of a managed plugin.
type CSIPluginContainerInfo struct {
	// Services are ControllerService and/or NodeService.
	Services []string `json:"services"`
	// Command starts the plugin; Mesos adds CSI_ENDPOINT and MESOS_AGENT_ID
	// to its environment.
	Command *CommandInfo `json:"command,omitempty"`
	// Resources are the container's resources.
	Resources []Resource `json:"resources,omitempty"`
}

// CommandInfo is the part of mesos.CommandInfo that localdisk uses.
type CommandInfo struct {
	// Shell false: Value is executed with Arguments as its argv.
	Shell bool `json:"shell"`
	// Value is the executable.
	Value string `json:"value"`
	// Arguments is argv, argv[0] included.
	Arguments []string `json:"arguments,omitempty"`
}

// Resource is a scalar mesos.Resource.
type Resource struct {
	// Name is e.g. cpus or mem.
	Name string `json:"name"`
	// Type is SCALAR.
	Type string `json:"type"`
	// Scalar is the amount (mem in MB).
	Scalar *Scalar `json:"scalar,omitempty"`
}

// Scalar is mesos.Value.Scalar.
type Scalar struct {
	// Value is the amount.
	Value float64 `json:"value"`
}

// CSIPluginEndpoint is the endpoint of one service of an unmanaged plugin.
type CSIPluginEndpoint struct {
	// CSIService is ControllerService or NodeService.
	CSIService string `json:"csi_service"`
	// Endpoint is unix:///ABS/PATH.
	Endpoint string `json:"endpoint"`
}
