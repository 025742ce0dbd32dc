package cql2

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/twinstac/twinstac/catalog"
)

type tokKind int

const (
	tEOF    tokKind = iota
	tIdent          // unquoted identifier or keyword
	tQuoted         // double-quoted identifier
	tNumber         // unsigned numeric literal, text normalised to JSON
	tString         // single-quoted character literal, unescaped
	tPunct          // ( ) , = <> < <= > >= + - * / % ^
)

type token struct {
	kind tokKind
	text string
	pos  int // byte offset in the filter
}

// reserved are the keywords that cannot be used as unquoted property names.
var reserved = map[string]bool{
	"AND": true, "OR": true, "NOT": true, "LIKE": true, "BETWEEN": true,
	"IN": true, "IS": true, "NULL": true, "TRUE": true, "FALSE": true, "DIV": true,
}

func invalidText(pos int, format string, args ...any) error {
	return catalog.Invalid("filter:"+strconv.Itoa(pos), format, args...)
}

func isIdentStart(r rune) bool {
	return r == ':' || r == '_' || unicode.IsLetter(r) ||
		(r >= 0x200C && r <= 0x200D) || (r >= 0x2070 && r <= 0x218F)
}

func isIdentPart(r rune) bool {
	return isIdentStart(r) || r == '.' || unicode.IsDigit(r) ||
		unicode.Is(unicode.Mn, r) || r == 0x203F || r == 0x2040
}

// isIdentifier reports whether s can be written unquoted as a function name.
func isIdentifier(s string) bool {
	if s == "" || reserved[strings.ToUpper(s)] {
		return false
	}
	for i, r := range s {
		if i == 0 && !isIdentStart(r) || !isIdentPart(r) {
			return false
		}
	}
	return true
}

// lex splits a CQL2-Text filter into tokens, ending with one tEOF token.
func lex(src string) ([]token, error) {
	if !utf8.ValidString(src) {
		for i, r := range src {
			if r == utf8.RuneError {
				if _, size := utf8.DecodeRuneInString(src[i:]); size == 1 {
					return nil, invalidText(i, "filter is not valid UTF-8")
				}
			}
		}
	}
	var toks []token
	i := 0
	for i < len(src) {
		r, size := utf8.DecodeRuneInString(src[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return nil, invalidText(i, "filter is not valid UTF-8")
		case unicode.IsSpace(r):
			i += size
		case r == '\'':
			s, end, err := lexString(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tString, s, i})
			i = end
		case r == '"':
			end := strings.IndexByte(src[i+1:], '"')
			if end < 0 {
				return nil, invalidText(i, "unterminated quoted identifier")
			}
			name := src[i+1 : i+1+end]
			if name == "" {
				return nil, invalidText(i, "empty quoted identifier")
			}
			toks = append(toks, token{tQuoted, name, i})
			i += end + 2
		case r >= '0' && r <= '9' || r == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			text, end := lexNumber(src, i)
			toks = append(toks, token{tNumber, text, i})
			i = end
		case isIdentStart(r):
			j := i + size
			for j < len(src) {
				r2, s2 := utf8.DecodeRuneInString(src[j:])
				if !isIdentPart(r2) {
					break
				}
				j += s2
			}
			toks = append(toks, token{tIdent, src[i:j], i})
			i = j
		default:
			p := ""
			switch {
			case strings.HasPrefix(src[i:], "<>"), strings.HasPrefix(src[i:], "<="), strings.HasPrefix(src[i:], ">="):
				p = src[i : i+2]
			case strings.ContainsRune("(),=<>+-*/%^", r):
				p = string(r)
			default:
				return nil, invalidText(i, "unexpected character %q", r)
			}
			toks = append(toks, token{tPunct, p, i})
			i += len(p)
		}
	}
	return append(toks, token{tEOF, "", len(src)}), nil
}

// lexString reads a character literal starting at the quote at i; a doubled
// quote and a backslash-escaped quote both stand for one quote.
func lexString(src string, i int) (string, int, error) {
	var b strings.Builder
	j := i + 1
	for j < len(src) {
		switch {
		case src[j] == '\'' && j+1 < len(src) && src[j+1] == '\'':
			b.WriteByte('\'')
			j += 2
		case src[j] == '\\' && j+1 < len(src) && src[j+1] == '\'':
			b.WriteByte('\'')
			j += 2
		case src[j] == '\'':
			return b.String(), j + 1, nil
		default:
			b.WriteByte(src[j])
			j++
		}
	}
	return "", 0, invalidText(i, "unterminated character literal")
}

// lexNumber reads an unsigned numeric literal and returns it as a valid
// JSON number, keeping the digits as written whenever JSON allows.
func lexNumber(src string, i int) (string, int) {
	digits := func(j int) int {
		for j < len(src) && src[j] >= '0' && src[j] <= '9' {
			j++
		}
		return j
	}
	j := digits(i)
	if j < len(src) && src[j] == '.' {
		j = digits(j + 1)
	}
	if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
		k := j + 1
		if k < len(src) && (src[k] == '+' || src[k] == '-') {
			k++
		}
		if e := digits(k); e > k {
			j = e
		}
	}
	text := src[i:j]
	if !json.Valid([]byte(text)) {
		text = jsonNumber(text)
	}
	return text, j
}

// jsonNumber rewrites an unsigned number that JSON does not accept (".5",
// "5.", "007") into one it does, keeping its digits: leading zeros of the
// integer part go, an empty integer part becomes 0, an empty fraction goes.
func jsonNumber(text string) string {
	mantissa, exp := text, ""
	if k := strings.IndexAny(text, "eE"); k >= 0 {
		mantissa, exp = text[:k], text[k:]
	}
	whole, frac, _ := strings.Cut(mantissa, ".")
	whole = strings.TrimLeft(whole, "0")
	if whole == "" {
		whole = "0"
	}
	if frac != "" {
		whole += "." + frac
	}
	return whole + exp
}
