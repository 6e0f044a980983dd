package main

import "testing"

// The slices of a create-only measurement create exactly --creates volumes.
func TestShareAddsUp(t *testing.T) {
	for _, c := range []struct{ n, slices int }{{300, 3}, {100, 3}, {7, 7}, {8, 3}, {1, 1}} {
		sum := 0
		for s := range c.slices {
			p := share(c.n, c.slices, s)
			if p < 1 {
				t.Errorf("share(%d, %d, %d) = %d: a slice creates nothing", c.n, c.slices, s, p)
			}
			sum += p
		}
		if sum != c.n {
			t.Errorf("%d split in %d slices adds up to %d", c.n, c.slices, sum)
		}
	}
}
