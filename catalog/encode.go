package catalog

import (
	"encoding/json"
	"slices"
	"unicode/utf8"
)

// appendDocument appends d as a JSON object with sorted keys. Member
// values are written as they are: they come from a decoder or from
// json.Marshal and are valid JSON already, so re-validating and
// compacting them (what json.Marshal does with RawMessage) would only
// cost time on the ingest path. extra, when not nil, is written as the
// member extraKey (used for an item's properties).
func appendDocument(buf []byte, d Document, extraKey string, extra Document) []byte {
	keys := make([]string, 0, len(d)+1)
	for k := range d {
		if extra != nil && k == extraKey {
			continue
		}
		keys = append(keys, k)
	}
	if extra != nil {
		keys = append(keys, extraKey)
	}
	slices.Sort(keys)
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, k)
		buf = append(buf, ':')
		if extra != nil && k == extraKey {
			buf = appendDocument(buf, extra, "", nil)
			continue
		}
		v := d[k]
		if len(v) == 0 {
			v = json.RawMessage("null")
		}
		buf = append(buf, v...)
	}
	return append(buf, '}')
}

// AppendDocument appends d as a JSON object with sorted keys, its
// member values as they are (valid JSON, as every Document holds);
// extra, when not nil, is written as the member extraKey.
func AppendDocument(buf []byte, d Document, extraKey string, extra Document) []byte {
	return appendDocument(buf, d, extraKey, extra)
}

// appendString appends s as a JSON string, escaping as encoding/json
// does (without HTML escaping).
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				const hex = "0123456789abcdef"
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			if r == utf8.RuneError {
				buf = append(buf, `\ufffd`...)
			} else {
				buf = append(buf, `\u202`...)
				buf = append(buf, "89"[r-'\u2028'])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
