package catalog

import (
	"strings"
	"time"
)

// ParseInterval parses a STAC API datetime parameter: an instant
// ("2024-06-01T00:00:00Z"), a closed interval ("a/b") or a half-open one
// ("../b", "a/..", "a/", "/b"). A nil bound is open.
// Codes: EINVALID.
func ParseInterval(pointer, s string) (start, end *time.Time, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) > 2 {
		return nil, nil, Invalid(pointer, "a datetime is an instant or an interval \"start/end\", not %q", s)
	}
	bounds := make([]*time.Time, 2)
	for i, p := range parts {
		if p == "" || p == ".." {
			if len(parts) == 1 {
				return nil, nil, Invalid(pointer, "an instant cannot be open")
			}
			continue
		}
		t, err := ParseTime(p)
		if err != nil {
			return nil, nil, Invalid(pointer, "%q is not an RFC 3339 date-time (such as 2024-06-01T00:00:00Z)", p)
		}
		bounds[i] = &t
	}
	if len(parts) == 1 {
		return bounds[0], bounds[0], nil
	}
	if bounds[0] == nil && bounds[1] == nil {
		return nil, nil, Invalid(pointer, "an interval needs at least one bound")
	}
	if bounds[0] != nil && bounds[1] != nil && bounds[0].After(*bounds[1]) {
		return nil, nil, Invalid(pointer, "the interval ends before it starts")
	}
	return bounds[0], bounds[1], nil
}
