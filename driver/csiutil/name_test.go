package csiutil

import "testing"

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"pvc-1", "with space", "tab\there", "line\nfeed", "cr\rlf", "ünïcödé", "日本", "\u00a0nbsp", "\u00a0"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", ok, err)
		}
	}
	for _, r := range []rune{0x00, 0x01, 0x08, 0x0b, 0x0c, 0x0e, 0x1f, 0x7f, 0x80, 0x9f} {
		name := "pvc" + string(r) + "x"
		if err := CheckName(name); err == nil {
			t.Errorf("CheckName with %U succeeded, want refused", r)
		}
	}
	if err := CheckName("bad\xffutf8"); err == nil {
		t.Error("CheckName of invalid UTF-8 succeeded")
	}
}
