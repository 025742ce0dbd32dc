package cql2

import (
	"runtime"
	"testing"
)

// TestPositionsForgotten checks that the table of text positions lets go
// of the nodes of filters no longer in use.
func TestPositionsForgotten(t *testing.T) {
	size := func() int {
		textPositions.mu.Lock()
		defer textPositions.mu.Unlock()
		return len(textPositions.m)
	}
	keep, err := ParseText("a = 1 AND b LIKE 'x%'")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := textPosition(keep.(*Op).Args[1]); !ok {
		t.Fatal("the position of a parsed node is not known")
	}
	for range 1000 {
		if _, err := ParseText("a = 1 OR S_INTERSECTS(g, POINT(1 2)) OR c IN (1, 2, 3)"); err != nil {
			t.Fatal(err)
		}
	}
	grown := size()
	// Cleanups run on their own goroutine after a collection.
	for i := 0; i < 1000 && size() > grown/2; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if n := size(); n > grown/2 {
		t.Errorf("the table still holds %d of %d positions", n, grown)
	}
	if pos, ok := textPosition(keep.(*Op).Args[1]); !ok || pos != 12 {
		t.Errorf("position of a node still in use = %d, %v; want 12 (LIKE)", pos, ok)
	}
	runtime.KeepAlive(keep)
}
