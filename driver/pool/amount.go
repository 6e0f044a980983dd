package pool

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Amount is a pool's capacity or reserve: a Quantity of bytes ("2Gi"), or a
// percentage of the size of the pool's filesystem ("15%"), or, for the
// defaults, the larger of both.
type Amount struct {
	Bytes   Quantity
	Percent float64 // 0 when not set; else in (0, 100]
	// err is a malformed percentage ("150%", "-1%", "%"), kept for
	// Validate to report with the pool's name.
	err error
	raw string
}

// DefaultRootReserve is what a ROOT pool keeps free of volumes unless it
// says otherwise: 15% of its filesystem, at least 2 GiB. kubelet evicts
// pods once its filesystem has less than 10% free (its default hard
// threshold, nodefs.available); the rest covers images and logs.
var DefaultRootReserve = Amount{Bytes: 2 << 30, Percent: 15}

// Of is the amount on a filesystem of size bytes.
func (a Amount) Of(size int64) int64 {
	v := int64(a.Bytes)
	if a.Percent > 0 && size > 0 {
		v = max(v, int64(math.Floor(float64(size)*a.Percent/100)))
	}
	return v
}

// IsPercent reports whether the amount depends on the filesystem's size.
func (a Amount) IsPercent() bool { return a.Percent > 0 }

// String renders the amount as it is written.
func (a Amount) String() string {
	p := strconv.FormatFloat(a.Percent, 'f', -1, 64) + "%"
	switch {
	case a.Percent > 0 && a.Bytes > 0:
		return p + " (at least " + a.Bytes.String() + ")"
	case a.Percent > 0:
		return p
	}
	return a.Bytes.String()
}

// ParseAmount parses a quantity or a percentage ("15%", "12.5%").
func ParseAmount(s string) (Amount, error) {
	t := strings.TrimSpace(s)
	num, ok := strings.CutSuffix(t, "%")
	if !ok {
		q, err := ParseQuantity(t)
		return Amount{Bytes: q}, err
	}
	p, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	switch {
	case err != nil || math.IsNaN(p):
		return Amount{}, fmt.Errorf("bad percentage %q: want a number from 0 to 100 followed by %%", s)
	case p <= 0 || p > 100:
		return Amount{}, fmt.Errorf("percentage %q is out of range: want more than 0%% and at most 100%%", s)
	}
	return Amount{Percent: p}, nil
}

// set parses s into a, keeping a malformed percentage for Validate (so its
// error names the pool); a malformed quantity fails at once, as before.
func (a *Amount) set(s string) error {
	v, err := ParseAmount(s)
	if err != nil && strings.HasSuffix(strings.TrimSpace(s), "%") {
		*a = Amount{err: err, raw: s}
		return nil
	}
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// UnmarshalJSON accepts a JSON number of bytes, a string quantity or a
// string percentage.
func (a *Amount) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		return a.set(s)
	}
	var q Quantity
	if err := q.UnmarshalJSON(b); err != nil {
		return err
	}
	*a = Amount{Bytes: q}
	return nil
}

// UnmarshalYAML accepts what UnmarshalJSON does; an error names the value's
// line and column.
func (a *Amount) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && strings.HasSuffix(strings.TrimSpace(n.Value), "%") {
		return a.set(n.Value)
	}
	var q Quantity
	if err := q.UnmarshalYAML(n); err != nil {
		return err
	}
	*a = Amount{Bytes: q}
	return nil
}

// MarshalJSON writes the amount as it is written in a pools file.
func (a Amount) MarshalJSON() ([]byte, error) {
	if a.Percent > 0 && a.Bytes > 0 {
		return nil, fmt.Errorf("amount %s has no written form", a)
	}
	if a.Percent > 0 {
		return json.Marshal(a.String())
	}
	return json.Marshal(int64(a.Bytes))
}

// check reports a malformed percentage or a negative amount.
func (a Amount) check(field string) error {
	if a.err != nil {
		return fmt.Errorf("%s %q: %v", field, a.raw, a.err)
	}
	if a.Bytes < 0 {
		return fmt.Errorf("%s must not be negative", field)
	}
	return nil
}

// Bytes is an Amount of n bytes, for a Spec's Capacity or Reserve.
func Bytes(n int64) *Amount { return &Amount{Bytes: Quantity(n)} }
