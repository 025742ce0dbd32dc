package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode"
)

// Document is a JSON object kept member by member, so that members the
// server does not know (STAC extensions, anything a client adds) round-trip
// byte for byte.
type Document map[string]json.RawMessage

// DecodeDocument decodes a JSON object. pointer names the object in
// errors. Codes: EINVALID.
func DecodeDocument(pointer string, raw []byte) (Document, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, Invalid(pointer, "must be a JSON object")
	}
	if !json.Valid(raw) {
		var d Document
		err := json.Unmarshal(raw, &d)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return nil, Invalid(pointer, "not valid JSON: %s", jsonErrorText(err))
	}
	d, err := splitObject(raw)
	if err != nil {
		return nil, Invalid(pointer, "must be a JSON object")
	}
	return d, nil
}

func jsonErrorText(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return e.Error() + " at byte " + itoa(e.Offset)
	case *json.UnmarshalTypeError:
		return "expected " + e.Type.String() + " but found " + e.Value
	}
	return err.Error()
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Has reports whether the member is present (even if null).
func (d Document) Has(key string) bool { _, ok := d[key]; return ok }

// IsNull reports whether the member is absent or JSON null.
func (d Document) IsNull(key string) bool {
	v, ok := d[key]
	return !ok || string(v) == "null"
}

// String returns a string member. ok is false when absent or null; err is
// set when present but not a string.
func (d Document) String(pointer, key string) (s string, ok bool, err error) {
	if d.IsNull(key) {
		return "", false, nil
	}
	if err := json.Unmarshal(d[key], &s); err != nil {
		return "", false, Invalid(pointer+"/"+key, "must be a string")
	}
	return s, true, nil
}

// Time returns an RFC 3339 timestamp member.
func (d Document) Time(pointer, key string) (t time.Time, ok bool, err error) {
	s, ok, err := d.String(pointer, key)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	t, err = ParseTime(s)
	if err != nil {
		return time.Time{}, false, Invalid(pointer+"/"+key, "must be an RFC 3339 date-time such as 2024-06-01T10:00:00Z, not %q", s)
	}
	return t, true, nil
}

// Set stores v (marshalled to JSON) under key.
func (d Document) Set(key string, v any) {
	if s, ok := v.(string); ok {
		d[key] = appendString(make([]byte, 0, len(s)+2), s)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic("catalog: cannot marshal " + key + ": " + err.Error())
	}
	d[key] = b
}

// Clone returns a shallow copy; the raw member values are shared and must
// not be modified in place.
func (d Document) Clone() Document {
	c := make(Document, len(d))
	for k, v := range d {
		c[k] = v
	}
	return c
}

// Object decodes a member that must be an object (absent or null: nil).
func (d Document) Object(pointer, key string) (Document, error) {
	if d.IsNull(key) {
		return nil, nil
	}
	v := bytes.TrimSpace(d[key])
	if len(v) == 0 || v[0] != '{' {
		return nil, Invalid(pointer+"/"+key, "must be a JSON object")
	}
	// Members of a Document were validated with it.
	o, err := splitObject(v)
	if err != nil {
		return nil, Invalid(pointer+"/"+key, "must be a JSON object")
	}
	return o, nil
}

// ParseTime parses an RFC 3339 timestamp and returns it in UTC.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// FormatTime formats t as STAC writes timestamps: RFC 3339 in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// CheckID checks a collection or item id: 1 to 256 characters, no slash,
// backslash or control character, not "." or "..", no leading or trailing
// space, since ids are path segments of URLs and blob keys.
// Codes: EINVALID.
func CheckID(pointer, id string) error {
	switch {
	case id == "":
		return Invalid(pointer, "must not be empty")
	case len(id) > 256:
		return Invalid(pointer, "must be at most 256 bytes long")
	case id == "." || id == "..":
		return Invalid(pointer, "must not be %q", id)
	case strings.TrimSpace(id) != id:
		return Invalid(pointer, "must not start or end with white space")
	}
	for _, r := range id {
		if r == '/' || r == '\\' || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return Invalid(pointer, "must not contain %q", r)
		}
	}
	return nil
}
