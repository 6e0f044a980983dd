package volume

import (
	"testing"

	"github.com/localdisk-csi/localdisk/driver/keylock"
)

// The lock order is the keys' classes: a name, then a volume ID, then a
// CO path, however a call lists them; a key taken later must be of a
// higher class than those held (CreateVolume: the name, then the ID).
func TestLockKeys_NameThenIDThenPath(t *testing.T) {
	if !(NameKey("z").Class < IDKey("a").Class && IDKey("z").Class < PathKey("/a").Class) {
		t.Fatalf("classes: name %d, ID %d, path %d; want increasing", NameKey("").Class, IDKey("").Class, PathKey("").Class)
	}
	if NameKey("") == (keylock.Key{}) {
		t.Fatal("the key of an empty name is the zero key, which locks nothing")
	}
	f := newFixture(t)
	ctx := t.Context()
	unlock, err := f.m.Lock(ctx, PathKey("/t"), IDKey("v"), NameKey("n"))
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	held, err := f.m.lock(ctx, NameKey("n"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	if _, err := lockMore(ctx, held, IDKey("v")); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("a name's key taken while holding an ID's did not panic")
		}
	}()
	lockMore(ctx, held, NameKey("m"))
}
