package volume

import (
	"context"
	"errors"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/pool"
)

func TestExpand(t *testing.T) {
	f := newFixture(t)
	v, _ := f.create("v", 2*MiB, 0, map[string]string{"pool": "r"})
	bg := context.Background()
	for _, tc := range []struct {
		name            string
		required, limit int64
		want            int64
		err             error
	}{
		{"growing within the pool works", 5*MiB + 1, 0, 6 * MiB, nil},
		{"a request already satisfied changes nothing", 3 * MiB, 0, 6 * MiB, nil},
		{"shrinking is refused", 0, 4 * MiB, 0, pool.ErrOutOfRange},
		{"beyond the pool's size is out of range", 11 * MiB, 0, 0, pool.ErrOutOfRange},
		{"an inverted range is invalid", 8 * MiB, 7 * MiB, 0, pool.ErrInvalidRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.m.Expand(bg, v.ID, tc.required, tc.limit)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("= %d, %v; want %d, %v", got, err, tc.want, tc.err)
			}
		})
	}
	f.create("w", 3*MiB, 0, map[string]string{"pool": "r"})
	if _, err := f.m.Expand(bg, v.ID, 8*MiB, 0); !errors.Is(err, pool.ErrInsufficientCapacity) {
		t.Errorf("beyond free room: %v", err)
	}
	if _, err := f.m.Expand(bg, "nope", MiB, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown volume: %v", err)
	}
	f.restart() // the new size was recorded and stays charged
	if got, _ := f.m.Lookup(v.ID); got.Capacity != 6*MiB {
		t.Errorf("capacity after restart = %d", got.Capacity)
	}
	if got := f.free(map[string]string{"pool": "r"}); got != MiB {
		t.Errorf("free after restart = %d, want 1 MiB", got)
	}
}
