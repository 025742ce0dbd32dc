package search

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/twinstac/twinstac/catalog"
)

// SortKey orders by one property, ascending unless Desc.
type SortKey struct {
	Property string
	Desc     bool
}

// DefaultSort is the order of a search that names none: newest first
// (an item with a time range by its start).
var DefaultSort = []SortKey{{Property: PropDatetime, Desc: true}}

// MaxSortKeys bounds the sortby list.
const MaxSortKeys = 8

// prepareSort normalises the property names and appends the
// tie-breakers: id, then collection, in the direction of the last key,
// so that the order is total and keyset paging is exact.
func prepareSort(keys []SortKey) ([]SortKey, error) {
	if len(keys) == 0 {
		keys = DefaultSort
	}
	if len(keys) > MaxSortKeys {
		return nil, catalog.Invalid("sortby", "at most %d sort keys, not %d", MaxSortKeys, len(keys))
	}
	out := make([]SortKey, 0, len(keys)+2)
	seen := map[string]bool{}
	for i, k := range keys {
		p := NormalizeProperty(k.Property)
		if p == "" {
			return nil, catalog.Invalid("sortby", "sort key %d names no property", i+1)
		}
		switch p {
		case PropGeometry, PropGeom:
			return nil, catalog.Invalid("sortby", "items cannot be sorted by their geometry")
		}
		if seen[p] {
			return nil, catalog.Invalid("sortby", "%q is named twice", p)
		}
		seen[p] = true
		out = append(out, SortKey{Property: p, Desc: k.Desc})
	}
	last := out[len(out)-1].Desc
	for _, p := range []string{PropID, PropCollection} {
		if !seen[p] {
			out = append(out, SortKey{Property: p, Desc: last})
		}
	}
	return out, nil
}

// Cursor is a position in a search's order: the sort key values of the
// item at the edge of a page, one per key of the prepared Sort. A
// datetime key holds a time.Time, id and collection keys a string, and a
// property key the property's JSON value (nil when it is absent or null).
type Cursor struct {
	Keys []any
}

// CursorOf returns the cursor at an item under a prepared sort.
func CursorOf(sort []SortKey, it *catalog.Item) *Cursor {
	c := &Cursor{Keys: make([]any, len(sort))}
	for i, k := range sort {
		c.Keys[i] = sortValue(k.Property, it)
	}
	return c
}

func sortValue(p string, it *catalog.Item) any {
	switch p {
	case PropDatetime:
		return it.Start
	case PropID:
		return it.ID
	case PropCollection:
		return it.Collection
	}
	raw := it.Props[p]
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return json.RawMessage(raw)
}

// Compare orders two items under a prepared sort: the reference order
// the stores follow. Property values order by kind, numbers first, then
// strings (by code point), booleans (false first), and arrays and
// objects (equal among themselves), and null or absent last; Desc
// reverses all of it.
func Compare(sort []SortKey, a, b *catalog.Item) int {
	for _, k := range sort {
		c := compareValues(k.Property, sortValue(k.Property, a), sortValue(k.Property, b))
		if k.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// CompareCursor orders an item against a cursor under a prepared sort.
func CompareCursor(sort []SortKey, it *catalog.Item, c *Cursor) int {
	for i, k := range sort {
		d := compareValues(k.Property, sortValue(k.Property, it), c.Keys[i])
		if k.Desc {
			d = -d
		}
		if d != 0 {
			return d
		}
	}
	return 0
}

func compareValues(p string, x, y any) int {
	switch p {
	case PropDatetime:
		return x.(time.Time).Compare(y.(time.Time))
	case PropID, PropCollection:
		return strings.Compare(x.(string), y.(string))
	}
	rx, vx := Rank(x)
	ry, vy := Rank(y)
	if rx != ry {
		return rx - ry
	}
	switch rx {
	case RankNumber:
		a, b := vx.(float64), vy.(float64)
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
	case RankString:
		return strings.Compare(vx.(string), vy.(string))
	case RankBool:
		a, b := vx.(bool), vy.(bool)
		switch {
		case !a && b:
			return -1
		case a && !b:
			return 1
		}
	}
	return 0
}

// Kinds of sort values, in their sort order.
const (
	RankNumber = 1
	RankString = 2
	RankBool   = 3
	RankOther  = 4 // arrays and objects
	RankNull   = 5
)

// Rank classifies a property sort value (nil or raw JSON) and decodes it:
// a float64, a string, a bool or nil.
func Rank(v any) (int, any) {
	raw, _ := v.(json.RawMessage)
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return RankNull, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return RankString, s
		}
	case 't', 'f':
		return RankBool, raw[0] == 't'
	case '[', '{':
		return RankOther, nil
	default:
		var f float64
		if json.Unmarshal(raw, &f) == nil {
			return RankNumber, f
		}
	}
	return RankOther, nil
}

// Tokens are the opaque page tokens of next and prev links: the cursor's
// keys as JSON, base64url-encoded, with a prefix telling the direction.

// EncodeToken returns the token of a next page (before false) or a
// previous one (before true).
func EncodeToken(c *Cursor, before bool) string {
	keys := make([]any, len(c.Keys))
	for i, k := range c.Keys {
		if t, ok := k.(time.Time); ok {
			keys[i] = catalog.FormatTime(t)
			continue
		}
		keys[i] = k
	}
	b, _ := json.Marshal(keys)
	prefix := "n"
	if before {
		prefix = "p"
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// DecodeToken reads a token made by EncodeToken for a search with the
// prepared sort. Codes: EINVALID.
func DecodeToken(token string, sort []SortKey) (c *Cursor, before bool, err error) {
	bad := catalog.Invalid("token", "the page token is not one this server issued; follow the next and prev links as given")
	if len(token) < 2 || (token[0] != 'n' && token[0] != 'p') {
		return nil, false, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(token[1:])
	if err != nil {
		return nil, false, bad
	}
	var raws []json.RawMessage
	if json.Unmarshal(b, &raws) != nil {
		return nil, false, bad
	}
	if len(raws) != len(sort) {
		return nil, false, catalog.Invalid("token", "the page token belongs to a search with another sort order")
	}
	c = &Cursor{Keys: make([]any, len(sort))}
	for i, k := range sort {
		raw := raws[i]
		switch k.Property {
		case PropDatetime:
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return nil, false, bad
			}
			t, err := catalog.ParseTime(s)
			if err != nil {
				return nil, false, bad
			}
			c.Keys[i] = t
		case PropID, PropCollection:
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return nil, false, bad
			}
			c.Keys[i] = s
		default:
			if string(raw) == "null" {
				continue
			}
			c.Keys[i] = raw
		}
	}
	return c, token[0] == 'p', nil
}
