package cql2

import (
	"runtime"
	"strconv"
	"sync"
	"weak"
)

// ParseText remembers the byte offset at which it found each node so that
// Check can point into the filter text ("filter:<offset>") although the AST
// carries no positions: the AST types stay plain values that compare equal
// whichever encoding they came from. The table holds its nodes weakly: an
// entry goes when its node is collected, so it never keeps an AST alive.
//
// A node not found here (built by hand, or parsed from CQL2-JSON) is
// located by the JSON pointer of the node in the AST's CQL2-JSON form,
// which for a filter parsed from CQL2-JSON is the pointer into the filter.
var textPositions = struct {
	mu sync.Mutex
	m  map[any]int // weak.Pointer[T] of a node → byte offset
}{m: map[any]int{}}

// weakKey returns the key of node e in textPositions and whether e is a
// node that can be keyed (a non-nil pointer of one of the AST types).
func weakKey(e Expr) (any, bool) {
	switch n := e.(type) {
	case *Bool:
		return weakOf(n)
	case *Number:
		return weakOf(n)
	case *String:
		return weakOf(n)
	case *Date:
		return weakOf(n)
	case *Timestamp:
		return weakOf(n)
	case *Interval:
		return weakOf(n)
	case *Property:
		return weakOf(n)
	case *Geometry:
		return weakOf(n)
	case *BBox:
		return weakOf(n)
	case *Array:
		return weakOf(n)
	case *Op:
		return weakOf(n)
	}
	return nil, false
}

func weakOf[T any](n *T) (any, bool) {
	if n == nil {
		return nil, false
	}
	return weak.Make(n), true
}

// rememberPositions records the offsets of a parsed text filter's nodes.
func rememberPositions(pos map[Expr]int) {
	keys := make(map[any]int, len(pos))
	for e, p := range pos {
		k, ok := weakKey(e)
		if !ok {
			continue
		}
		keys[k] = p
		addCleanup(e, k)
	}
	textPositions.mu.Lock()
	for k, p := range keys {
		textPositions.m[k] = p
	}
	textPositions.mu.Unlock()
}

func addCleanup(e Expr, k any) {
	forget := func(k any) {
		textPositions.mu.Lock()
		delete(textPositions.m, k)
		textPositions.mu.Unlock()
	}
	switch n := e.(type) {
	case *Bool:
		runtime.AddCleanup(n, forget, k)
	case *Number:
		runtime.AddCleanup(n, forget, k)
	case *String:
		runtime.AddCleanup(n, forget, k)
	case *Date:
		runtime.AddCleanup(n, forget, k)
	case *Timestamp:
		runtime.AddCleanup(n, forget, k)
	case *Interval:
		runtime.AddCleanup(n, forget, k)
	case *Property:
		runtime.AddCleanup(n, forget, k)
	case *Geometry:
		runtime.AddCleanup(n, forget, k)
	case *BBox:
		runtime.AddCleanup(n, forget, k)
	case *Array:
		runtime.AddCleanup(n, forget, k)
	case *Op:
		runtime.AddCleanup(n, forget, k)
	}
}

// textPosition returns the offset at which ParseText found e.
func textPosition(e Expr) (int, bool) {
	k, ok := weakKey(e)
	if !ok {
		return 0, false
	}
	textPositions.mu.Lock()
	p, ok := textPositions.m[k]
	textPositions.mu.Unlock()
	return p, ok
}

// textPointer is the Pointer of an error at byte offset pos of a text
// filter.
func textPointer(pos int) string { return "filter:" + strconv.Itoa(pos) }
