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
	kept *entry // the one message kept, nil before the first Keep
}

// entry is the kept message and, once marshalled, its encoding.
type entry struct {
	msg  protobuf.Message
	once sync.Once
	data []byte
	err  error
}

// NewCodec returns a codec that keeps nothing yet.
func NewCodec() *Codec {
	return &Codec{CodecV2: encoding.GetCodecV2(proto.Name)}
}

// Keep makes m the kept message, in place of the one kept before: from now
// on m is encoded once and its bytes reused. The caller promises that m is
// never changed again.
func (c *Codec) Keep(m protobuf.Message) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kept == nil || c.kept.msg != m {
		c.kept = &entry{msg: m}
	}
}

// Marshal encodes v, from the kept bytes when v is the kept message.
func (c *Codec) Marshal(v any) (mem.BufferSlice, error) {
	c.mu.Lock()
	e := c.kept
	c.mu.Unlock()
	if m, ok := v.(protobuf.Message); ok && e != nil && e.msg == m {
		e.once.Do(func() { e.data, e.err = protobuf.Marshal(e.msg) })
		if e.err != nil {
			return nil, e.err
		}
		// A SliceBuffer's Free does nothing: the bytes outlive the call.
		return mem.BufferSlice{mem.SliceBuffer(e.data)}, nil
	}
	return c.CodecV2.Marshal(v)
}
