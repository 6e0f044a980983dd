// Package testutil holds the helpers that localdisk's tests share: root-only
// gating, short temporary directories that are safe to mount below, loop
// mounted filesystem images, the mount table, and building, starting and
// stopping the real plugin binary.
//
// Every helper registers its own cleanup with t.Cleanup, so a test never has
// to undo what a helper did, and nothing (no mount, loop device or process)
// outlives the test, also when it fails. Cleanups run in reverse order of
// registration, so create resources in dependency order: first the
// directory (ShortTempDir), then the disks in it (LoopDisk), then the plugin
// that uses them (StartPlugin).
//
// Helpers that need root call RequireRoot themselves.
//
// With LOCALDISK_TEST_SECCOMP=enosys (or eperm), every plugin started with
// StartPlugin runs under the seccomp launcher (test/seccomp/launcher,
// BuildLauncher), where the new mount API and quotactl_fd(2) fail with that
// errno, and each start checks that the plugin logged its fallbacks to
// mount(2) and quotactl(2); PluginOptions.Seccomp chooses per plugin.
package testutil
