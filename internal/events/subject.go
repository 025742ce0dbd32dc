package events

import (
	"encoding/json"
	"strings"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/jobs"
)

// Root is the first token of every subject this node publishes.
const Root = "twinstac"

// escapeChar starts an escaped byte in a subject token: %XX, XX its
// upper-case hex value. It is escaped itself, so that unescaping is exact.
const escapeChar = '%'

// emptyToken stands for the empty string, which NATS does not allow as a
// token. No escaped non-empty string is "%" alone.
const emptyToken = "%"

const hexDigits = "0123456789ABCDEF"

// plain reports whether b may stand for itself in a token: printable
// ASCII other than the token separator, the wildcards and the escape
// character. Whitespace, control bytes and non-ASCII bytes are escaped,
// so that every token is valid for every NATS client and tool.
func plain(b byte) bool {
	return b > ' ' && b < 0x7f && b != '.' && b != '*' && b != '>' && b != escapeChar
}

// EscapeToken turns s into one valid NATS subject token: what NATS
// reserves ('.', '*', '>', whitespace) and anything else outside
// printable ASCII becomes %XX, and so does '%' itself; the empty string
// becomes "%". Distinct strings give distinct tokens, and UnescapeToken
// reverses it.
func EscapeToken(s string) string {
	if s == "" {
		return emptyToken
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !plain(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte(escapeChar)
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
	return b.String()
}

// UnescapeToken reverses EscapeToken; ok is false for a string that
// EscapeToken does not produce.
func UnescapeToken(tok string) (s string, ok bool) {
	if tok == emptyToken {
		return "", true
	}
	if tok == "" {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c != escapeChar {
			if !plain(c) {
				return "", false
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(tok) {
			return "", false
		}
		hi, lo := strings.IndexByte(hexDigits, tok[i+1]), strings.IndexByte(hexDigits, tok[i+2])
		if hi < 0 || lo < 0 {
			return "", false
		}
		v := byte(hi<<4 | lo)
		if plain(v) {
			return "", false // EscapeToken leaves it as it is
		}
		b.WriteByte(v)
		i += 2
	}
	return b.String(), true
}

// NodeToken is the subject token of a node.
func NodeToken(node string) string { return EscapeToken(node) }

// NodeSubjects is the wildcard of every subject a node publishes.
func NodeSubjects(node string) string { return Root + "." + NodeToken(node) + ".>" }

// StreamName is the name of the JetStream stream that holds a node's
// events. Stream names allow fewer characters than subject tokens, so
// the node's token is escaped once more (with '_' for '%').
func StreamName(node string) string {
	tok := NodeToken(node)
	var b strings.Builder
	b.WriteString("TWINSTAC_")
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			b.WriteByte(c)
		default:
			// '_' starts an escape here, as '%' does in tokens.
			b.WriteByte('_')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
	}
	return b.String()
}

// Subject returns the NATS subject of an event published by node:
//
//	twinstac.<node>.items.<collection>.<event>    item.<event>
//	twinstac.<node>.collections.<collection>.<event>  collection.<event>
//	twinstac.<node>.jobs.<status>.<job id>        job.<status>
//	twinstac.<node>.<kind>.<event>                any other <kind>.<event>
//
// Every id is one escaped token (EscapeToken), so that a subscriber can
// filter with wildcards: twinstac.<node>.items.<collection>.> for one
// collection's items, twinstac.<node>.jobs.failed.* for every failed job,
// twinstac.<node>.jobs.*.<id> for one job.
func Subject(node string, ev *catalog.Event) string {
	kind, event, _ := strings.Cut(ev.Type, ".")
	prefix := Root + "." + NodeToken(node) + "."
	switch kind {
	case "item", "collection":
		var p catalog.EventPayload
		_ = json.Unmarshal(ev.Payload, &p)
		return prefix + kind + "s." + EscapeToken(p.Collection) + "." + EscapeToken(event)
	case "job":
		var p jobs.EventPayload
		_ = json.Unmarshal(ev.Payload, &p)
		return prefix + "jobs." + EscapeToken(event) + "." + EscapeToken(p.ID)
	}
	return prefix + EscapeToken(kind) + "." + EscapeToken(event)
}
