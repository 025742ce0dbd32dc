package jobs

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twinstac/twinstac/catalog"
)

func TestExpandSweep(t *testing.T) {
	base := map[string]any{"steps": 3}
	show := func(sets []SweepSet) string {
		var out []string
		for _, s := range sets {
			out = append(out, fmt.Sprintf("%v/%v/%v@%d%d", s.Inputs["a"], s.Inputs["b"], s.Inputs["steps"], s.Picks["a"], s.Picks["b"]))
		}
		return strings.Join(out, " ")
	}
	sets, err := ExpandSweep(base, map[string][]any{"b": {"x", "y", "z"}, "a": {1, 2}}, "")
	if err != nil {
		t.Fatal(err)
	}
	// Names in order, the last varying fastest; the base in every set.
	if got := show(sets); got != "1/x/3@00 1/y/3@01 1/z/3@02 2/x/3@10 2/y/3@11 2/z/3@12" {
		t.Fatalf("product: %s", got)
	}
	sets, err = ExpandSweep(base, map[string][]any{"b": {"x", "y"}, "a": {1, 2}}, SweepZip)
	if err != nil {
		t.Fatal(err)
	}
	if got := show(sets); got != "1/x/3@00 2/y/3@11" {
		t.Fatalf("zip: %s", got)
	}
	sets[0].Inputs["steps"] = 9
	if base["steps"] != 3 || sets[1].Inputs["steps"] != 3 {
		t.Fatal("input sets share the base map")
	}
	big := make([]any, 101)
	for _, tc := range []struct {
		sweep map[string][]any
		mode  string
		ptr   string
	}{
		{map[string][]any{}, "", "/sweep"},
		{map[string][]any{"a": {}}, "", "/sweep/a"},
		{map[string][]any{"steps": {1}}, "", "/sweep/steps"},
		{map[string][]any{"a": {1}, "b": {1, 2}}, SweepZip, "/sweep/b"},
		{map[string][]any{"a/b": {1}, "c": {1, 2}}, SweepZip, "/sweep/c"},
		{map[string][]any{"a": big, "b": big}, "", "/sweep"},
		{map[string][]any{"a": {1}}, "cross", "/mode"},
	} {
		_, err := ExpandSweep(base, tc.sweep, tc.mode)
		var ce *catalog.Error
		if catalog.ErrorCode(err) != catalog.EINVALID || !asError(err, &ce) || ce.Pointer != tc.ptr {
			t.Errorf("ExpandSweep(%v, %q) = %v, want EINVALID at %s", tc.sweep, tc.mode, err, tc.ptr)
		}
	}
	if got := pointerToken("a/b~c"); got != "a~1b~0c" {
		t.Fatalf("pointerToken = %q", got)
	}
}

func asError(err error, target **catalog.Error) bool {
	e, ok := err.(*catalog.Error)
	*target = e
	return ok
}
