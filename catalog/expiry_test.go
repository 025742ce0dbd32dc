package catalog

import (
	"errors"
	"testing"
)

func TestCollectionExpiryPolicy(t *testing.T) {
	t.Parallel()
	doc := func(expiry string) []byte {
		return []byte(`{"type":"Collection","id":"c","description":"d","license":"CC-BY-4.0",
			"extent":{"spatial":{"bbox":[[-180,-90,180,90]]},"temporal":{"interval":[[null,null]]}}` + expiry + `}`)
	}
	for _, tc := range []struct {
		name, member, want string
	}{
		{"default", ``, ExpiryArchive},
		{"archive", `,"dt:expiry":"archive"`, ExpiryArchive},
		{"delete", `,"dt:expiry":"delete"`, ExpiryDelete},
	} {
		c, err := ParseCollection("", doc(tc.member))
		if err != nil || c.ExpiryPolicy() != tc.want {
			t.Errorf("%s: %v, %v; want policy %s", tc.name, c, err, tc.want)
		}
	}
	for _, bad := range []string{`,"dt:expiry":"purge"`, `,"dt:expiry":true`} {
		_, err := ParseCollection("", doc(bad))
		var e *Error
		if ErrorCode(err) != EINVALID || !errors.As(err, &e) || e.Pointer != "/dt:expiry" {
			t.Errorf("%s: %v, want EINVALID at /dt:expiry", bad, err)
		}
	}
}
