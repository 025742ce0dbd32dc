package search

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode"

	"github.com/twinstac/twinstac/catalog"
)

// Free text (q): a term matches when its words appear one after the
// other in the text of an item (its title, description and keywords,
// in that order) or of a collection; terms are alternatives. Words are
// the runs of letters and digits, compared in lower case. The stores
// index the same words (PostgreSQL full text with the simple
// configuration, SQLite FTS5).

// Words splits text into lower-case words: runs of letters and numbers
// (Unicode categories L and N).
func Words(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
}

// MaxTerms bounds the q list.
const MaxTerms = 32

// prepareTerms normalises q: each term becomes its words joined by
// single spaces; terms without words are dropped. Codes: EINVALID (only
// terms without words, too many terms).
func prepareTerms(q []string) ([]string, error) {
	if len(q) == 0 {
		return nil, nil
	}
	if len(q) > MaxTerms {
		return nil, catalog.Invalid("q", "at most %d terms, not %d", MaxTerms, len(q))
	}
	var out []string
	for _, t := range q {
		if w := Words(t); len(w) > 0 {
			out = append(out, strings.Join(w, " "))
		}
	}
	if len(out) == 0 {
		return nil, catalog.Invalid("q", "the free-text terms hold no words (letters or digits)")
	}
	return out, nil
}

// ItemText is the text free-text terms are matched against: the item's
// title, description and keywords (the strings of the array), joined by
// spaces.
func ItemText(props catalog.Document) string {
	return documentText(props)
}

// CollectionText is ItemText for a collection document.
func CollectionText(doc catalog.Document) string {
	return documentText(doc)
}

func documentText(d catalog.Document) string {
	var parts []string
	for _, k := range []string{"title", "description"} {
		var s string
		if json.Unmarshal(d[k], &s) == nil && s != "" {
			parts = append(parts, s)
		}
	}
	raw := bytes.TrimSpace(d["keywords"])
	if len(raw) > 0 && raw[0] == '[' {
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) == nil {
			for _, el := range list {
				var s string
				if json.Unmarshal(el, &s) == nil && s != "" {
					parts = append(parts, s)
				}
			}
		}
	}
	return strings.Join(parts, " ")
}

// MatchText reports whether any prepared term's words appear one after
// the other in text.
func MatchText(terms []string, text string) bool {
	words := Words(text)
	for _, t := range terms {
		tw := strings.Split(t, " ")
		for i := 0; i+len(tw) <= len(words); i++ {
			match := true
			for j, w := range tw {
				if words[i+j] != w {
					match = false
					break
				}
			}
			if match {
				return true
			}
		}
	}
	return false
}
