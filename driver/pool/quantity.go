package pool

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MiB is the unit of every capacity localdisk reports: Mesos keeps disk sizes
// in MB and recomputes bytes from them, so only whole MiB round-trip.
const MiB int64 = 1 << 20

// Quantity is a byte count written as a plain number of bytes or with a
// binary suffix: Ki, Mi, Gi, Ti, Pi.
type Quantity int64

var suffixes = []struct {
	s string
	m int64
}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50}}

// ParseQuantity parses "2Gi", "2048Mi" or "1073741824".
func ParseQuantity(s string) (Quantity, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, suf := range suffixes {
		if strings.HasSuffix(t, suf.s) {
			t, mult = strings.TrimSuffix(t, suf.s), suf.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad quantity %q: want bytes or a number with Ki, Mi, Gi, Ti or Pi", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("quantity %q overflows 64 bits", s)
	}
	return Quantity(n * mult), nil
}

// UnmarshalJSON accepts a JSON number of bytes or a string quantity.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("bad quantity %s", b)
		}
		s = n.String()
	}
	v, err := ParseQuantity(s)
	if err != nil {
		return err
	}
	*q = v
	return nil
}

// UnmarshalYAML accepts a number of bytes or a string quantity; an error
// names the value's line and column.
func (q *Quantity) UnmarshalYAML(n *yaml.Node) error {
	bad := func(err error) error { return &posErr{n.Line, n.Column, err.Error()} }
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" && n.ShortTag() != "!!int" {
		return bad(fmt.Errorf("bad quantity: want bytes or a number with Ki, Mi, Gi, Ti or Pi"))
	}
	s := n.Value
	if n.ShortTag() == "!!int" {
		var v int64
		if err := n.Decode(&v); err != nil {
			return bad(fmt.Errorf("quantity %q overflows 64 bits", n.Value))
		}
		s = strconv.FormatInt(v, 10)
	}
	v, err := ParseQuantity(s)
	if err != nil {
		return bad(err)
	}
	*q = v
	return nil
}

// String renders the quantity with the largest exact binary suffix.
func (q Quantity) String() string {
	for i := len(suffixes) - 1; i >= 0; i-- {
		if m := suffixes[i].m; q != 0 && int64(q)%m == 0 {
			return strconv.FormatInt(int64(q)/m, 10) + suffixes[i].s
		}
	}
	return strconv.FormatInt(int64(q), 10)
}

// FloorMiB rounds n down to whole MiB.
func FloorMiB(n int64) int64 { return n / MiB * MiB }

// CeilMiB rounds n up to whole MiB; ok is false when that overflows.
func CeilMiB(n int64) (v int64, ok bool) {
	if n > math.MaxInt64-(MiB-1) {
		return 0, false
	}
	return (n + MiB - 1) / MiB * MiB, true
}
