// Package mesos plays Apache Mesos's part (1.11: the storage local resource
// provider and the CSI volume isolator) against the real localdisk binary,
// with real loop-mounted disks and real mounts, and checks every behaviour
// that ../../../shared/MESOS.md says Mesos relies on.
//
// The call sequences, paths and checks follow the Mesos 1.11 sources
// (src/csi/v1_volume_manager.cpp, src/csi/service_manager.cpp,
// src/csi/paths.cpp, src/resource_provider/storage/provider.cpp,
// src/slave/csi_server.cpp): every RPC has a 60 s deadline; the plugin is
// launched with CSI_ENDPOINT and MESOS_AGENT_ID; volumes are mounted under
// <work_dir>/csi/localdisk.csi.io/<name>/mounts/<id>/{staging,target}, where
// the agent makes the staging directory and only the parent of the target,
// checks that the target exists after NodePublishVolume and is gone after
// NodeUnpublishVolume, and finally removes mounts/<id> recursively.
//
// Each test gets its own directory (testutil.ShortTempDir), disks and
// plugin; agent (agent_test.go) holds the agent's side, and calls_test.go
// the calls Mesos makes. Nothing is timed.
//
// Item of MESOS.md -> test:
//
//	 1  launch with env only, node ID, stale socket  TestMesos01_LaunchWithEnvOnly
//	 2  start-up call order, Probe always OK         TestMesos02_StartupSequence
//	 3  controller capabilities                      TestMesos03_ControllerCapabilities
//	 4  no retried codes for permanent errors        TestMesos04_NoRetryableCodesForPermanentErrors
//	 5  ListVolumes: one page, no side effects       TestMesos05_ListVolumesOnePage
//	 6  list only this instance's volumes            TestMesos06_ListsOnlyOwnVolumes
//	 7  GetCapacity per profile, 0 when unservable   TestMesos07_GetCapacityPerProfile
//	 8  capacities in whole MiB                      TestMesos08_CapacitiesWholeMiB
//	 9  deterministic volume_context                 TestMesos09_VolumeContextDeterministic
//	10  CreateVolume of exactly S                    TestMesos10_CreateVolumeExactSize
//	11  CreateVolume replay after failover/reboot    TestMesos11_CreateVolumeReplay
//	12  DeleteVolume idempotent, frees space         TestMesos12_DeleteVolumeIdempotent
//	13  importing a pre-existing disk (Validate)     TestMesos13_ValidatePreExistingDisk
//	14  whole disks as pre-existing disks            TestMesos14_MountDisksAsPreExisting
//	15  volume IDs need no percent-encoding          TestMesos15_VolumeIDsNeedNoEncoding
//	16  staging exists, only the target's parent     TestMesos16_StagingExistsTargetParentOnly
//	17  readonly and reader-only modes honoured      TestMesos17_ReadonlyHonoured
//	18  stage and publish again after a reboot       TestMesos18_RebootRestage
//	19  repeated stage/publish stack nothing         TestMesos19_RepeatedCallsStackNothing
//	20  publish by ID and context only               TestMesos20_PublishKnownOnlyByID
//	21  target chowned, emptied by Mesos             TestMesos21_ChownTargetAndWipeContents
//	22  unpublish removes the target                 TestMesos22_UnpublishRemovesTarget
//	23  unstage keeps the staging directory          TestMesos23_UnstageKeepsStagingDir
//	24  nothing mounted under mounts/<id> at the end TestMesos24_NothingLeftUnderMountPath
//	25  managed plugin: container, propagation       TestMesos25_ManagedPluginMountsPropagate
//	26  unmanaged plugin for the CSI isolator        TestMesos26_UnmanagedPluginForIsolator
//
// Seed semantics (seed_test.go):
//
//	data survives restart, crash and reboot; destroy removes it  TestSeed_DataSurvivesUntilDestroyed
//	a PATH pool shrunk below its volumes keeps serving them      TestSeed_ShrunkPathPoolKeepsServing
//
// The tests need root (they mount), and the unshare(1) tool for item 25.
package mesos
