package csiutil

import (
	"fmt"
	"unicode/utf8"
)

// CheckName enforces what csi.proto allows in a CreateVolumeRequest (and
// CreateSnapshotRequest) name: "Any Unicode string that conforms to the
// length limit is allowed except those containing the following banned
// characters: U+0000-U+0008, U+000B, U+000C, U+000E-U+001F, U+007F-U+009F."
// Tab, line feed and carriage return are allowed.
func CheckName(name string) error {
	if !utf8.ValidString(name) {
		return fmt.Errorf("name is not valid UTF-8")
	}
	for i, r := range name {
		if Banned(r) {
			return fmt.Errorf("name holds the banned character %U at byte %d (CSI bans U+0000-U+0008, U+000B, U+000C, U+000E-U+001F, U+007F-U+009F)", r, i)
		}
	}
	return nil
}

// Banned reports whether CSI bans r from names: the control characters but
// tab (U+0009), line feed (U+000A) and carriage return (U+000D).
func Banned(r rune) bool {
	return r <= 0x1f && r != '\t' && r != '\n' && r != '\r' || r >= 0x7f && r <= 0x9f
}
