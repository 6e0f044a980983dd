// Package mesos builds the JSON documents a Mesos operator needs to run
// localdisk, from the pools that localdisk serves:
//
//   - Profiles: the disk profile mapping read by Mesos's URI disk profile
//     adaptor (DiskProfileMapping in
//     src/resource_provider/storage/disk_profile.proto), one profile per pool
//     and one per kind present;
//   - ProviderConfig: the Storage Local Resource Provider config
//     (ResourceProviderInfo in include/mesos/mesos.proto) that makes the agent
//     launch localdisk as a managed plugin serving both CSI services;
//   - IsolatorConfig: the CSIPluginInfo of an unmanaged localdisk (one that
//     systemd runs) for the agent's volume/csi isolator
//     (--csi_plugin_config_dir).
//
// The JSON field names are the protobuf field names (snake_case): the agent
// parses resource provider and CSI plugin configs with stout's JSON-to-proto
// parser, which looks fields up by their proto name and silently drops any
// other key, and the URI adaptor's proto3 JSON parser accepts them too.
// Enums are written as their value names.
//
// The package knows nothing of gRPC; it only reads pool configurations.
package mesos

// Constants of the Mesos side.
const (
	// ProviderType is the type of the Storage Local Resource Provider.
	ProviderType = "org.apache.mesos.rp.local.storage"
	// KindProfilePrefix starts the name of a kind's profile:
	// "localdisk-root", "localdisk-path", "localdisk-mount".
	KindProfilePrefix = "localdisk-"
	// DefaultProviderName names the resource provider and its plugin.
	DefaultProviderName = "localdisk"
	// DefaultIsolatorName names the unmanaged plugin instance. It differs
	// from DefaultProviderName so that the agent keeps the two instances'
	// state apart (<work_dir>/csi/<type>/<name>/).
	DefaultIsolatorName = "localdisk_unmanaged"
	// DefaultCPUs and DefaultMemMB are the managed plugin's resources.
	DefaultCPUs  = 0.1
	DefaultMemMB = 256.0
)

// CSI services (CSIPluginContainerInfo.Service).
const (
	ControllerService = "CONTROLLER_SERVICE"
	NodeService       = "NODE_SERVICE"
)

// SingleNodeWriter is the access mode of every profile
// (csi.v0.VolumeCapability.AccessMode.Mode).
const SingleNodeWriter = "SINGLE_NODE_WRITER"
