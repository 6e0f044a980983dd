// Package wire is the server's gRPC codec: protobuf, as gRPC's own codec
// does it, except that a message the server will answer many times without
// change (Keep) is encoded once and its bytes are reused.
//
// It exists for ListVolumes: with 10,000 volumes the answer is 1.2 MiB,
// mostly protobuf map encoding, and it only changes with the volume set,
// while Mesos asks for it every few seconds.
package wire

import (
	"sync"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	protobuf "google.golang.org/protobuf/proto"
)

// Codec is a gRPC CodecV2 (grpc.ForceServerCodecV2). The zero value is not
// usable; use NewCodec. A nil *Codec keeps nothing.
type Codec struct {
	encoding.CodecV2 // the proto codec, for everything not kept

	mu   sync.Mutex
	kept map[string]*entry
}

// entry is one kept message and, once marshalled, its encoding.
type entry struct {
	msg  protobuf.Message
	once sync.Once
	data []byte
	err  error
}

// NewCodec returns a codec that keeps nothing yet.
func NewCodec() *Codec {
	return &Codec{CodecV2: encoding.GetCodecV2(proto.Name), kept: map[string]*entry{}}
}

// Keep names m as the message for slot: from now on, until another Keep of
// the same slot, m is encoded once and its bytes reused. The caller
// promises that m is never changed again.
func (c *Codec) Keep(slot string, m protobuf.Message) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.kept[slot]; e == nil || e.msg != m {
		c.kept[slot] = &entry{msg: m}
	}
}

// Marshal encodes v, from the kept bytes when v is a kept message.
func (c *Codec) Marshal(v any) (mem.BufferSlice, error) {
	if e := c.lookup(v); e != nil {
		e.once.Do(func() { e.data, e.err = protobuf.Marshal(e.msg) })
		if e.err != nil {
			return nil, e.err
		}
		// A SliceBuffer's Free does nothing: the bytes outlive the call.
		return mem.BufferSlice{mem.SliceBuffer(e.data)}, nil
	}
	return c.CodecV2.Marshal(v)
}

func (c *Codec) lookup(v any) *entry {
	m, ok := v.(protobuf.Message)
	if !ok {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.kept {
		if e.msg == m {
			return e
		}
	}
	return nil
}
