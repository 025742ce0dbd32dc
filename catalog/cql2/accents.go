package cql2

import (
	"strings"

	"golang.org/x/text/unicode/norm"
)

// stripAccents removes accents by Unicode decomposition: the string is
// decomposed (NFD), its combining marks are dropped and the rest is
// composed again (NFC). "Chișinău" becomes "Chisinau"; letters that do
// not decompose (ø, ł, æ) stay as they are. The stores do the same in
// SQL, with the same ranges of combining marks.
func stripAccents(s string) string {
	d := strings.Map(func(r rune) rune {
		if isCombiningMark(r) {
			return -1
		}
		return r
	}, norm.NFD.String(s))
	return norm.NFC.String(d)
}

// isCombiningMark reports the combining diacritical marks: the basic
// block, its extended and supplement blocks, those for symbols, and the
// half marks.
func isCombiningMark(r rune) bool {
	switch {
	case r >= 0x0300 && r <= 0x036f,
		r >= 0x1ab0 && r <= 0x1aff,
		r >= 0x1dc0 && r <= 0x1dff,
		r >= 0x20d0 && r <= 0x20ff,
		r >= 0xfe20 && r <= 0xfe2f:
		return true
	}
	return false
}
