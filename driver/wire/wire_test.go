package wire

import (
	"bytes"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/proto"
)

func list(ids ...string) *csi.ListVolumesResponse {
	r := &csi.ListVolumesResponse{}
	for _, id := range ids {
		r.Entries = append(r.Entries, &csi.ListVolumesResponse_Entry{Volume: &csi.Volume{
			VolumeId: id, CapacityBytes: 1 << 20, VolumeContext: map[string]string{"pool": "root"}}})
	}
	return r
}

func marshal(t *testing.T, c *Codec, m proto.Message) []byte {
	t.Helper()
	b, err := c.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	return b.Materialize()
}

// A kept message is encoded once: its bytes are those of proto.Marshal,
// and they are reused (a change the caller promised not to make is not
// seen) until another message is kept.
func TestKeep(t *testing.T) {
	c := NewCodec()
	m := list("a", "b")
	want, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	c.Keep(m)
	if got := marshal(t, c, m); !bytes.Equal(got, want) {
		t.Fatalf("kept encoding differs from proto.Marshal")
	}
	m.Entries = m.Entries[:1]
	if got := marshal(t, c, m); !bytes.Equal(got, want) {
		t.Fatalf("a kept message was encoded again")
	}
	other := list("c")
	c.Keep(other)
	if got := marshal(t, c, m); bytes.Equal(got, want) {
		t.Fatalf("a message no longer kept still answers from the kept bytes")
	}
	enc, err := c.Marshal(other)
	if err != nil {
		t.Fatal(err)
	}
	var back csi.ListVolumesResponse
	if err := c.Unmarshal(enc, &back); err != nil || len(back.Entries) != 1 || back.Entries[0].Volume.VolumeId != "c" {
		t.Fatalf("round trip: %v %v", err, &back)
	}
	if c.Name() != "proto" {
		t.Fatalf("Name() = %q, want proto (gRPC matches it to the content subtype)", c.Name())
	}
}

// Messages that were never kept, and a nil codec, behave as the proto codec.
func TestNotKept(t *testing.T) {
	var nilCodec *Codec
	nilCodec.Keep(list("a")) // no panic
	c := NewCodec()
	m := list("a")
	first := marshal(t, c, m)
	m.Entries[0].Volume.VolumeId = "b"
	if bytes.Equal(first, marshal(t, c, m)) {
		t.Fatal("an unkept message's encoding was reused")
	}
}
