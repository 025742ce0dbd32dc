package catalog

import (
	"encoding/json"
	"errors"
)

// splitObject splits a JSON object that is known to be valid into its
// members, in one shallow pass: values are sub-slices of raw and are not
// decoded. It is the fast path behind DecodeDocument, which validates the
// whole input once first; a second full decode of every value (what
// json.Unmarshal into a map of RawMessage does) dominated ingest time.
func splitObject(raw []byte) (Document, error) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil, errNotObject
	}
	d := make(Document, 12)
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return d, nil
	}
	for i < len(raw) {
		if raw[i] != '"' {
			return nil, errNotObject
		}
		end := skipString(raw, i)
		key, err := decodeKey(raw[i:end])
		if err != nil {
			return nil, err
		}
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return nil, errNotObject
		}
		i = skipSpace(raw, i+1)
		vend := skipValue(raw, i)
		d[key] = json.RawMessage(raw[i:vend])
		i = skipSpace(raw, vend)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
			continue
		}
		if i < len(raw) && raw[i] == '}' {
			return d, nil
		}
		return nil, errNotObject
	}
	return nil, errNotObject
}

var errNotObject = errors.New("not a JSON object")

func decodeKey(quoted []byte) (string, error) {
	for _, c := range quoted[1 : len(quoted)-1] {
		if c == '\\' {
			var s string
			err := json.Unmarshal(quoted, &s)
			return s, err
		}
	}
	return string(quoted[1 : len(quoted)-1]), nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}

// splitArray splits a JSON array known to be valid into its elements.
func splitArray(raw []byte) ([]json.RawMessage, error) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return nil, errNotArray
	}
	var out []json.RawMessage
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return out, nil
	}
	for i < len(raw) {
		end := skipValue(raw, i)
		out = append(out, json.RawMessage(raw[i:end]))
		i = skipSpace(raw, end)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
			continue
		}
		if i < len(raw) && raw[i] == ']' {
			return out, nil
		}
		return nil, errNotArray
	}
	return nil, errNotArray
}

var errNotArray = errors.New("not a JSON array")

// objects splits a validated JSON array of objects.
func objects(raw []byte) ([]Document, error) {
	elems, err := splitArray(raw)
	if err != nil {
		return nil, err
	}
	out := make([]Document, len(elems))
	for i, e := range elems {
		if out[i], err = splitObject(e); err != nil {
			return nil, err
		}
	}
	return out, nil
}
