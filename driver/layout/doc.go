// Package layout owns what several parts of localdisk derive and must agree
// on byte for byte:
//
//   - volume and disk IDs: DirVolumeID (ROOT/PATH), DiskID, ClaimID and
//     DiskOf (MOUNT), and the Slug of a path they and Mesos pool names use;
//   - the directories and files the plugin keeps on disk: in a ROOT or PATH
//     pool's root (<pool root>/localdisk/...) and in the state directory
//     (<state-dir>/volumes/<id>.json, ...);
//   - the keys of CreateVolume parameters, of volume contexts and of the
//     node's topology.
//
// The volume manager, the pools file, the Mesos documents, the benchmark
// and the tests all take them from here instead of keeping copies. The
// package imports only the standard library, so anything may import it.
//
// Every value here is part of localdisk's on-disk format or of the IDs that
// COs hold for existing volumes: a change strands existing volumes. The
// golden tests pin them.
package layout
